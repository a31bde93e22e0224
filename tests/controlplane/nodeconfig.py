"""Configuration files of a real node, as pure functions: paths and names in, file text out.

Addresses exist only inside the node's own network namespace (see netns.py):
  NODE_IP      the node's InternalIP (kubelet's serving address) and the API
               server's address there (the `kubernetes` Service's endpoint);
  POD_SUBNET   the CNI bridge's range for pods (POD_CIDR is kube-proxy's cluster CIDR).
The firewall (`firewall_rules`) is loaded before containerd starts: inside the
namespace only loopback, the node's address and pods are reachable; every other
destination is refused at once (TCP reset, ICMP administratively prohibited)
and counted.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from .certs import NODE_SIDE_IP

NODE_IP = NODE_SIDE_IP
POD_CIDR = "10.244.0.0/16"
POD_SUBNET = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
NODE_LINK = "hs-node"  # a bridge with no ports: it only holds NODE_IP and the default route
CNI_BRIDGE = "hs-cni0"
FIREWALL_TABLE = "headstart_node"
REFUSED_TCP = "refused-tcp"
REFUSED_OTHER = "refused-other"
KUBELET_PORT = 10250


def network_setup(firewall: Path) -> str:
    """Shell lines run by the namespace holder, before anything else starts in the namespace."""
    q = shlex.quote
    return "\n".join([
        "ip link set lo up",
        f"ip link add {NODE_LINK} type bridge",
        f"ip addr add {NODE_IP}/32 dev {NODE_LINK}",
        f"ip link set {NODE_LINK} up",
        # Every destination routes somewhere, so every refused packet meets the firewall and its counter.
        f"ip route add default dev {NODE_LINK}",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then"
        " echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables; fi",
        f"nft -f {q(str(firewall))}",
    ])


def firewall_rules() -> str:
    """nftables rules of the node's namespace: only loopback, the node and pods are reachable.

    Its own table at a priority before iptables' filter chains, so nothing kube-proxy adds can
    accept a packet this table refuses."""
    return f"""table inet {FIREWALL_TABLE} {{
  set allowed4 {{
    type ipv4_addr; flags interval;
    elements = {{ 127.0.0.0/8, {NODE_IP}, {POD_CIDR} }}
  }}
  chain egress {{
    ip daddr @allowed4 accept
    meta l4proto tcp counter reject with tcp reset comment "{REFUSED_TCP}"
    counter reject with icmpx type admin-prohibited comment "{REFUSED_OTHER}"
  }}
  chain output {{
    type filter hook output priority filter - 10; policy accept;
    oifname "lo" accept
    jump egress
  }}
  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    jump egress
  }}
}}
"""


def cni_config() -> str:
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "headstart",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": True,
                "ipMasq": False,  # nothing leaves the namespace, so nothing to masquerade
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "loopback"},
        ],
    }, indent=2)


def containerd_config(state: Path, cni_conf_dir: Path, sandbox_image: str) -> str:
    """containerd 1.6 (config version 2) with its root under `state`, its state on the private /run."""
    return f"""version = 2
root = "{state / 'containerd'}"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  # The pause image is imported, never pulled.
  sandbox_image = "{sandbox_image}"
  # root here lacks CAP_SYS_RESOURCE; without this runc fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
"""


def kubelet_config(*, state: Path, cgroup_root: str, ca: Path, serving_cert: Path, serving_key: Path,
                   resolv_conf: Path, cgroup_v1: bool) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # kubelet's cgroup v1 support is deprecated; on a v2 host this line is ignored
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failSwapOn": False,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "resolvConf": str(resolv_conf),
        "podLogsDirectory": "/var/log/pods",  # on the node's private /var/log
        "registerNode": True,
        # Images are imported, never pulled again: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "nodeStatusUpdateFrequency": "5s",
        "nodeStatusReportFrequency": "30s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "shutdownGracePeriod": "0s",
        "maxPods": 110,
        "serializeImagePulls": False,
        "localStorageCapacityIsolation": True,
    }
    if not cgroup_v1:
        config.pop("failCgroupV1")
    return json.dumps(config, indent=2)


def kube_proxy_config(kubeconfig: Path, node_name: str) -> str:
    return json.dumps({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node_name,
        "bindAddress": NODE_IP,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # conntrack sysctls are not per network namespace: leave the host's alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "30s", "minSyncPeriod": "0s"},
        "nodePortAddresses": [f"{NODE_IP}/32"],
    }, indent=2)
