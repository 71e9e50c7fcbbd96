"""The modules of bench/run: procs (processes and /proc), peers (the proxies
and their configs), scenarios (what is measured), load (the load generators),
runner (rounds), stats (medians and ratios), report and plots (the output)."""
