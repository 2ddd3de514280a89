"""The benchmark peers' memory measure (scripts/led_peer.py, scripts/pegasus_peer.py): the process's
resident memory now and its peak since a reset, as pyramidion-bench measures its own (VmRSS, VmHWM)."""


def rss_bytes(field):
    """A memory field of /proc/self/status ("VmRSS", "VmHWM") in bytes; -1 where there is none."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def reset_peak_rss():
    """Resets VmHWM to the current resident size (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
