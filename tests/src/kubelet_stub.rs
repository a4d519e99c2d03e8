//! stub
#[derive(Debug)]
pub struct KubeletConfig { pub images: Vec<(String, std::path::PathBuf)>, pub kubeconfig: std::path::PathBuf, pub log_dir: std::path::PathBuf, pub node_name: String }
#[derive(Debug)]
pub struct Kubelet;
impl Kubelet { pub fn start(_c: kube::Client, _k: KubeletConfig) -> Kubelet { Kubelet } }
