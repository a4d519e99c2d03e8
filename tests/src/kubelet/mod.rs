//! A process kubelet and Job controller: runs the stand-in cluster's Jobs as local processes.
