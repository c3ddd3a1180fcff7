# Helpers the bench scripts share; each sources it from the repository root: . bench/lib.sh
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

# wait_serving PID LOG SECONDS: waits until the broker PID has logged its
# "tokenbroker serving" line to LOG; fails (after printing LOG) if it exits
# first or SECONDS pass.
wait_serving() {
  local pid=$1 log=$2 i
  for ((i = 0; i < $3 * 50; i++)); do
    grep -q '"msg":"tokenbroker serving"' "$log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "the broker exited" >&2; return 1; }
    sleep 0.02
  done
  echo "the broker did not log 'tokenbroker serving' within $3 s" >&2
  return 1
}

# serving_addrs LOG T0: "GRPC_ADDR HTTP_HOST:PORT SECONDS" from the broker's
# "tokenbroker serving" line in LOG, SECONDS being the time that line
# carries minus T0 (date +%s.%N taken before the start): both listeners are
# up then, and polling would add the script's own latency.
serving_addrs() {
  python3 - "$1" "$2" <<'PY'
import datetime, json, sys
for line in open(sys.argv[1]):
    if line.startswith("{") and "tokenbroker serving" in line:
        m = json.loads(line)
        t = datetime.datetime.fromisoformat(m["time"].replace("Z", "+00:00")).timestamp()
        print(m["grpc"], m["http"].split("://")[1], f"{t - float(sys.argv[2]):.2f}")
        break
PY
}

# stop_broker: stops the broker whose PID is in $pid (SIGTERM, SIGKILL
# after 20 s) and clears pid; nothing if pid is empty.
stop_broker() {
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
