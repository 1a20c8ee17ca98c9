"""A local multi-cluster sandbox: real kube-apiservers, controller-managers, schedulers and
kwok (playing the kubelet) on loopback, sharing one etcd. Development and test tooling: the
federator and the collectors never import it."""
