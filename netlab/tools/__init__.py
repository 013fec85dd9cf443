"""Tools on a running lab: status tables, reachability probe, traffic, the datapath bench."""
