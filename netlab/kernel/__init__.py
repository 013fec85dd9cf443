"""The kernel: namespaces, netlink, the plan applied, ownership marks, processes, nftables."""
