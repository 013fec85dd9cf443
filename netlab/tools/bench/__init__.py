"""`netlab bench`: the seed's datapath comparison (TCP_STREAM, TCP_RR, TCP_CRR) on one machine.

paths.py says which namespaces talk (a dedicated lab per backend, and a bare veth pair as
the baseline); runner.py starts the real tools inside them and measures value and CPU;
parse.py reads the tools' reports; report.py turns results into a table, JSON or a plot;
session.py runs it all and removes whatever it built, whatever happens.
"""
