"""Medians of the runs, and the table printed without --json."""
from __future__ import annotations

import statistics

from .measure import Run


def summarize(runs: list[Run]) -> dict:
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 4) if values else None
    ok = [r for r in runs if not r.error]
    return {"up_s": med(r.up_s for r in ok), "down_s": med(r.down_s for r in ok),
            "up_cpu_s": med(r.up_cpu_s for r in ok),
            "up_min_s": round(min((r.up_s for r in ok if r.up_s is not None), default=0), 4) or None,
            "peak_rss_mb": round(max((r.peak_rss_mb for r in ok if r.peak_rss_mb), default=0), 1) or None,
            "pss_mb": med(r.pss_mb for r in ok), "processes": med(r.processes for r in ok),
            "errors": [r.error for r in runs if r.error]}


def table(results: list[dict]) -> str:
    head = (f"{'approach':<11} {'nodes':>5} {'pods':>5} {'up s':>7} {'down s':>7} {'ms/pod':>7} "
            f"{'up/ip2':>7} {'down/ip2':>8} {'up cpu s':>8} {'peak RSS':>9}")
    lines = [head, "-" * len(head)]

    def num(value, width, digits=2):
        return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    for res in results:
        ref = res["summary"].get("iproute2", {})
        for approach, s in res["summary"].items():
            up, down = s["up_s"], s["down_s"]
            per_pod = up / res["pods"] * 1000 if up and res["pods"] else None
            r_up = up / ref["up_s"] if up and ref.get("up_s") else None
            r_down = down / ref["down_s"] if down and ref.get("down_s") else None
            rss = f"{s['peak_rss_mb']:6.1f} MB" if s["peak_rss_mb"] else f"{'-':>9}"
            lines.append(f"{approach:<11} {res['nodes']:>5} {res['pods']:>5} {num(up, 7)} {num(down, 7)} "
                         f"{num(per_pod, 7)} {num(r_up, 7)} {num(r_down, 8)} {num(s.get('up_cpu_s'), 8)} {rss}")
            for err in s["errors"]:
                lines.append(f"  ! {err}")
        eq = res.get("equivalence")
        if eq:
            verdict = "same objects" if eq["equivalent"] else "DIFFERENT objects"
            lines.append(f"  {verdict}: namespaces {eq['namespaces']}, sampled {len(eq['sampled'])}: "
                         f"{eq['objects']['netlab']}")
            for d in eq["differences"]:
                lines.append(f"  ! {d['namespace']} {d['what']}: netlab {d['netlab']} / iproute2 {d['iproute2']}")
        lines += port_targets(res)
    lines += scale_targets(results)
    return "\n".join(lines)


UP_VS_SCRIPT_TARGET = 0.4    # netlab up of 10 x 100 pods against the iproute2 script (same run)
PER_POD_GROWTH_TARGET = 1.3  # per-pod up time at 10,000 pods against 1,000 (same run)
DOWN_10K_TARGET_S = 5.0
RSS_10K_TARGET_MB = 300.0


def scale_targets(results: list[dict]) -> list[str]:
    """The loading and 10,000-pod targets of the performance issue, from the sizes of this run."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"
    lines = []
    by_pods = {res["pods"]: res["summary"].get("netlab") for res in results if res["summary"].get("netlab")}
    for res in results:
        mine, script = res["summary"].get("netlab"), res["summary"].get("iproute2")
        if res["pods"] == 1000 and mine and script and mine["up_s"] and script["up_s"]:
            ratio = mine["up_s"] / script["up_s"]
            lines.append(f"target: up of 1,000 pods <= {UP_VS_SCRIPT_TARGET}x the iproute2 script -> "
                         f"{ratio:.2f}x: {verdict(ratio <= UP_VS_SCRIPT_TARGET)}")
    big, small = by_pods.get(10000), by_pods.get(1000)
    if big and big["up_s"]:
        if small and small["up_s"]:
            growth = (big["up_s"] / 10000) / (small["up_s"] / 1000)
            lines.append(f"target: per-pod up time at 10,000 pods <= {PER_POD_GROWTH_TARGET}x that at 1,000 -> "
                         f"{big['up_s'] / 10:.2f} ms vs {small['up_s']:.2f} ms = {growth:.2f}x: "
                         f"{verdict(growth <= PER_POD_GROWTH_TARGET)}")
        if big["down_s"]:
            lines.append(f"target: down of 10,000 pods <= {DOWN_10K_TARGET_S:.0f} s -> {big['down_s']:.2f} s: "
                         f"{verdict(big['down_s'] <= DOWN_10K_TARGET_S)}")
        if big["peak_rss_mb"]:
            lines.append(f"target: netlab's peak RSS at 10,000 pods <= {RSS_10K_TARGET_MB:.0f} MB -> "
                         f"{big['peak_rss_mb']:.1f} MB: {verdict(big['peak_rss_mb'] <= RSS_10K_TARGET_MB)}")
    return lines


UP_RATIO_TARGET = 1.3     # a lab with one port per pod, against the same lab without ports
PSS_TARGET_MB = 150.0     # every process of the lab with ports, together


def port_targets(res: dict) -> list[str]:
    """The responder's targets, from the `netlab` and `ports` runs of one size (same run)."""
    plain, ports = res["summary"].get("netlab"), res["summary"].get("ports")
    if not plain or not ports or not plain["up_s"] or not ports["up_s"]:
        return []
    ratio = ports["up_s"] / plain["up_s"]
    cpu = ports["up_cpu_s"] / plain["up_cpu_s"] if plain.get("up_cpu_s") and ports.get("up_cpu_s") else None

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"
    return [
        f"  ports: {res['pods']} pods with {res['ports']} port(s) each up in {ports['up_s']:.2f} s vs "
        f"{plain['up_s']:.2f} s without ports = {ratio:.2f}x (cpu {cpu:.2f}x)" if cpu else
        f"  ports: up {ports['up_s']:.2f} s vs {plain['up_s']:.2f} s = {ratio:.2f}x",
        f"  target: up with ports <= {UP_RATIO_TARGET}x up without -> {ratio:.2f}x: {verdict(ratio <= UP_RATIO_TARGET)}",
        f"  target: PSS of the lab's processes <= {PSS_TARGET_MB:.0f} MB -> {ports['pss_mb']} MB in "
        f"{ports['processes']:.0f} processes (without ports: {plain['pss_mb']} MB in {plain['processes']:.0f}): "
        f"{verdict((ports['pss_mb'] or 0) <= PSS_TARGET_MB)}",
    ]
