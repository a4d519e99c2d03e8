{{/* Chart name. */}}
{{- define "stampede.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects (63 characters at most). */}}
{{- define "stampede.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the demo server's Deployment and Service. */}}
{{- define "stampede.demoName" -}}
{{- printf "%s-demo" (include "stampede.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "stampede.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "stampede.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector of the operator pods. */}}
{{- define "stampede.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stampede.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Selector of the demo server pods. */}}
{{- define "stampede.demoSelectorLabels" -}}
app.kubernetes.io/name: {{ include "stampede.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: demo-server
{{- end -}}

{{/* The operator's ServiceAccount. */}}
{{- define "stampede.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stampede.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image of both binaries. */}}
{{- define "stampede.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The runners' default image: runner.image, else the operator's own image. */}}
{{- define "stampede.runnerImage" -}}
{{- if .Values.runner.image.repository -}}
{{- printf "%s:%s" .Values.runner.image.repository (.Values.runner.image.tag | default .Chart.AppVersion) -}}
{{- else -}}
{{- include "stampede.image" . -}}
{{- end -}}
{{- end -}}

{{/* "true" when the operator elects a leader. */}}
{{- define "stampede.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the dashboard is reached through a Service (and maybe an Ingress), so it
listens on the pod's address. Only the leading replica drives runs, so only one replica may
stand behind the Service. */}}
{{- define "stampede.dashboardServed" -}}
{{- if and .Values.dashboard.enabled (or .Values.dashboard.service.enabled .Values.dashboard.ingress.enabled) -}}
{{- if gt (int .Values.replicas) 1 -}}
{{- fail "dashboard.service and dashboard.ingress need replicas: 1 (only the leading replica drives runs and has their pages; with more replicas, kubectl port-forward to the Lease holder's pod)" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* Name of the leader Lease. */}}
{{- define "stampede.leaseName" -}}
{{- default (include "stampede.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The watched namespaces as a JSON list: watchNamespaces, else (namespaced mode) the release
namespace, else (cluster mode) [] for every namespace. */}}
{{- define "stampede.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- else if eq .Values.mode "namespaced" -}}
{{- list .Release.Namespace | toJson -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}
