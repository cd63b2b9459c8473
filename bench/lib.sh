# shellcheck shell=bash
# bench/lib.sh: helpers for bench/run (sourced, bash).
#
# Every background process is started through bg_start, which wraps it in
# timeout(1) and records its pid, so cleanup can stop exactly the processes
# this run started (by pid) and no wait can hang forever.

BG_PIDS=()
NOTES=()
ROWS=()

note() { NOTES+=("$*"); printf 'bench: %s\n' "$*" >&2; }
say() { printf 'bench: %s\n' "$*" >&2; }

# nap SECONDS: sleep without spawning a process (reads a FIFO nobody writes).
nap() { read -r -t "$1" -u "$NAP_FD" _ || :; }

nap_init() {
	mkfifo "$1"
	exec {NAP_FD}<>"$1"
}

# bg_start LIMIT_SECONDS CMD...: start CMD in the background under timeout;
# the pid (of timeout, which forwards signals to CMD) goes to $BG_PID.
# Standard input comes from the file named by $BG_STDIN (default /dev/null).
bg_start() {
	local limit=$1
	shift
	timeout -k 5 "$limit" "$@" <"${BG_STDIN:-/dev/null}" &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# bg_wait PID: wait for a process started by bg_start; returns its status
# (124 when timeout(1) had to stop it).
bg_wait() {
	local st=0
	wait "$1" || st=$?
	bg_forget "$1"
	return "$st"
}

# bg_forget PID: drop a reaped process from the list cleanup stops.
bg_forget() {
	local i
	for i in "${!BG_PIDS[@]}"; do
		[[ ${BG_PIDS[i]} == "$1" ]] && unset 'BG_PIDS[i]'
	done
}

# run_fg LIMIT CMD...: run CMD under timeout and wait for it (interruptibly).
run_fg() {
	bg_start "$@"
	bg_wait "$BG_PID"
}

# bg_stop PID...: stop processes started by bg_start (by pid) and reap them.
bg_stop() {
	local p
	for p; do
		kill -TERM "$p" 2>/dev/null || :
	done
	for p; do
		bg_wait "$p" 2>/dev/null || :
	done
}

bg_stop_all() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	BG_PIDS=()
}

# now: wall clock seconds with microseconds, no process spawned.
now() { printf '%s\n' "$EPOCHREALTIME"; }

# sub A B: A - B, 6 decimals.
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", a - b }'; }

# div A B [DECIMALS]
div() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { if (b == 0) print "inf"; else printf "%.*f\n", d, a / b }'; }

# median V...: the median (mean of the middle two for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) printf "%.6f\n", v[(NR + 1) / 2]
		else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# port_free PORT: true when no TCP socket (listening or connected) uses PORT.
port_free() {
	[[ -z $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
}

# pick_port: print a free TCP port below the ephemeral range (so no client
# connection of this run can hold it), 10000..32767 or less.
pick_port() {
	local p i lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	((lo > 11000)) || lo=32768
	for ((i = 0; i < 50; i++)); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# wait_listen PORT PID SECONDS: until something listens on PORT (PID alive).
wait_listen() {
	local port=$1 pid=$2 deadline
	deadline=$(( ${EPOCHREALTIME/./} / 1000 + $3 * 1000 ))
	while [[ -z $(ss -Hltn "( sport = :$port )" 2>/dev/null) ]]; do
		kill -0 "$pid" 2>/dev/null || return 1
		(( ${EPOCHREALTIME/./} / 1000 < deadline )) || return 1
		nap 0.01
	done
}

# wait_file FILE PID SECONDS: until FILE exists and is non-empty (PID alive).
wait_file() {
	local f=$1 pid=$2 deadline
	deadline=$(( ${EPOCHREALTIME/./} / 1000 + $3 * 1000 ))
	while [[ ! -s $f ]]; do
		kill -0 "$pid" 2>/dev/null || return 1
		(( ${EPOCHREALTIME/./} / 1000 < deadline )) || return 1
		nap 0.002
	done
}

# loadavg: the 1, 5 and 15 minute load averages.
loadavg() {
	local a b c _
	read -r a b c _ </proc/loadavg
	echo "$a $b $c"
}

# kib_to_mib KIB
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }

# row MEASUREMENT JQ PEER RATIO GOAL MET
row() {
	ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"$'\t'"$6")
}

# met RATIO OP LIMIT: print yes/no (OP is <= < >= >; - for no goal: -).
met() {
	[[ $2 == - ]] && { echo "-"; return; }
	case $1 in
	''|n/a|-) echo "n/a"; return ;;
	esac
	awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN {
		ok = (op == "<=") ? r <= l : (op == "<") ? r < l : (op == ">=") ? r >= l : r > l
		print ok ? "yes" : "NO" }'
}

print_table() {
	local r
	{
		printf 'measurement\tjq\tpeer\tratio jq/peer\tgoal\tmet?\n'
		for r in "${ROWS[@]}"; do
			printf '%s\n' "$r"
		done
	} | awk -F'\t' '
		{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR }
		END {
			for (r = 1; r <= n; r++) {
				line = ""
				for (i = 1; i < 6; i++)
					line = line sprintf("%-*s | ", w[i], c[r, i])
				line = line c[r, 6]
				print line
				if (r == 1) {
					line = ""
					for (i = 1; i <= 6; i++) {
						s = ""; for (k = 0; k < w[i]; k++) s = s "-"
						line = line s (i < 6 ? "-|-" : "")
					}
					print line
				}
			}
		}'
}
