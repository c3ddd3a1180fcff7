# Helpers the bench scripts share; source it: . "$root/bench/lib.sh"
# (bash; needs python3).

# cpu_ticks PID: the process's utime + stime (fields 14 and 15 of
# /proc/PID/stat), in ticks of 1/CLK_TCK s.
cpu_ticks() {
  local stat f
  stat=$(<"/proc/$1/stat")
  read -r -a f <<<"${stat##*) }" # fields from 3 (state) on
  echo $((f[11] + f[12]))
}

# jget FILE KEY: one top-level field of a JSON file.
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# ghzsum FILE: "req/s p99_seconds errors calls" from a ghz -O json report.
ghzsum() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p99 = next((d["latency"] for d in r.get("latencyDistribution") or [] if d["percentage"] == 99), 0) / 1e9
errs = sum(v for k, v in (r.get("statusCodeDistribution") or {}).items() if k != "OK")
print(f"{r['rps']:.0f} {p99:.6f} {errs} {r['count']}")
PY
}

# children_cpu_s BEFORE AFTER: the user + system seconds of the calling
# shell's waited-for children between two outputs of bash's `times` (its
# second line). Run `times >FILE` in the shell that runs the load tool,
# not in a subshell: a fork's children's times start at zero.
children_cpu_s() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def secs(path):
    line = open(path).read().splitlines()[1]
    return sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", line))
print(f"{secs(sys.argv[2]) - secs(sys.argv[1]):.3f}")
PY
}
