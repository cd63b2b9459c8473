# tests/test_helper/common.bash: what every jq bats test file loads.
#
# Use:
#   setup() { load test_helper/common; }           # and in setup_file() if the file has one
# A file without its own teardown()/teardown_file() gets ones that call jq_teardown; a file that
# defines its own must call jq_teardown from it.
#
# Helpers:
#   jq_setup [WORD]...     what every setup() does after loading this file: unset JQ_SERVER (a test
#                          names its server), D=$BATS_TEST_TMPDIR/d, made.  WORDs add to it:
#                            root    D=$BATS_TEST_TMPDIR itself
#                            sock    jq_tmpdir, for UNIX sockets (JQ_TMP)
#                            bytes   LC_ALL=C, so read -N and ${#var} count bytes
#                            worker  TMPD=$D/tmp (jq-run's temp dirs), M=$D/marks (exported), $D/in,
#                                    and JQ_STATE_DIR=$D/state
#   jq_tmpdir              make a short directory (mktemp -d /tmp/jq.XXXXXX) for UNIX sockets and set
#                          JQ_TMP to it (sun_path holds 108 bytes; BATS_TEST_TMPDIR can be longer).
#                          Call it directly; `d=$(jq_tmpdir)` also works (prints the path).
#   start_server [ARG]...  jq-serve --addr-file FILE ARG... in the background under a watchdog,
#                          listening on -l 127.0.0.1:0 unless ARGs hold -l/--listen; waits for the
#                          address file and exports SERVER (first address, e.g. 127.0.0.1:40123 or
#                          unix:/tmp/jq.x/sock), SERVER_ADDRS (all of them, one per line),
#                          SERVER_PID and SERVER_LOG (the server's stdout and stderr).
#   start_server_unix [ARG]...   the same, listening on unix:$JQ_TMP/sock
#   stop_server [PID]      SIGTERM the server (default $SERVER_PID) and reap it; no error if gone
#                          (KILL to its process group if it is still there after 5 s)
#   wait_server_exit [SECONDS]   wait for $SERVER_PID to exit (default: $BATS_TEST_TIMEOUT, or
#                          120 s); sets $status to its exit status; fails the test on time-out
#   jq_bg CMD [ARG]...     run CMD (a program, or a shell function: it then runs in a child bash
#                          and sees exported variables only) in the background under the
#                          watchdog with fd 3 closed; pid in $! and JQ_PIDS; jq_teardown kills it
#   wait_pid PID [SECONDS] wait for a jq_bg child (default as wait_server_exit); sets $status;
#                          fails the test on time-out
#   wait_for_file FILE [SECONDS]   wait until FILE exists and is not empty
#   serve_refused STATUS ARG...   jq-serve ARG... must exit STATUS at start, saying why with
#                          its name first, and never listen (no address file)
#   json_file_check FILE EXPR...  FILE is valid JSON and each python EXPR about it (as j) is
#                          true; fails naming the first false one
#   free_tcp_port          print a TCP port of 127.0.0.1 that nothing listens on now (a caller
#                          that binds it later must still retry if it was taken meanwhile)
#   make_files DIR N [EXT] N files DIR/file0001.EXT ... (default EXT dat), each with distinct content
#   jq_teardown            kill every background process started through these helpers (TERM, then
#                          KILL to its process group), print the server logs (bats shows them
#                          only when the test failed) and remove the jq_tmpdir directories
#
# Every background process closes bats' fd 3 (3>&-), else bats waits for it, and runs under
# `timeout $JQ_WATCHDOG` (seconds: BATS_TEST_TIMEOUT + 60 in a test, 1800 in setup_file), so a
# hang fails a test instead of blocking the run.
# To start one by hand: `cmd 3>&- & JQ_PIDS+=("$!")`.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

# The watchdog outlives bats' own per-test timeout, so that one reports a hang first; a server
# started in setup_file serves a whole file.
if [[ -z ${JQ_WATCHDOG:-} ]]; then
	if [[ -n ${BATS_TEST_TMPDIR:-} ]]; then
		JQ_WATCHDOG=$((${BATS_TEST_TIMEOUT:-240} + 60))
	else
		JQ_WATCHDOG=1800
	fi
fi
: "${JQ_WAIT:=60}"
# Servers keep their journal under the test's own directory, never in the tree (a test that sets
# its own JQ_STATE_DIR first keeps it).
: "${JQ_STATE_DIR:=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-/tmp}}/state}"
export JQ_STATE_DIR
# Likewise the token: the first jq-serve creates it, every client reads it, and a user's own
# ~/.config/jq/token is never touched.
: "${JQ_TOKEN_FILE:=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-/tmp}}/token}"
export JQ_TOKEN_FILE
# pids of background processes started in this scope (this test, or setup_file)
[[ ${JQ_PIDS+set} ]] || JQ_PIDS=()

# _jq_registry: the file listing what jq_teardown must remove, one per scope (test or file); a
# file, so that helpers run in $(...) can add to it
_jq_registry() {
	printf '%s/.jq-cleanup' "${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-${BATS_RUN_TMPDIR:-/tmp}}}"
}

jq_tmpdir() {
	local d
	d=$(mktemp -d /tmp/jq.XXXXXX) || return 1
	printf '%s\n' "$d" >>"$(_jq_registry)"
	# not exported: a test must not reuse the directory of its file's setup_file
	JQ_TMP=$d
	if ((BASH_SUBSHELL > 0)); then printf '%s\n' "$d"; fi
}

# _jq_exited PID: true when PID is gone or a zombie (kill -0 still succeeds on a zombie)
_jq_exited() {
	local stat
	kill -0 "$1" 2>/dev/null || return 0
	read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
	stat=${stat##*) }
	[[ ${stat%% *} == Z ]]
}

# _jq_reap PID SECONDS: wait up to SECONDS for PID to exit; then set _jq_rc to its exit status
# (127 when it was not our child) and return 0; return 1 if it is still running
_jq_reap() {
	local pid=$1 i n=$((${2:-$JQ_WAIT} * 20))
	for ((i = 0; i <= n; i++)); do
		if _jq_exited "$pid"; then
			_jq_rc=0
			wait "$pid" 2>/dev/null || _jq_rc=$?
			_jq_forget "$pid"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# _jq_forget PID: drop PID from JQ_PIDS once reaped, so a recycled pid is never killed
_jq_forget() {
	local p keep=()
	for p in "${JQ_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	JQ_PIDS=("${keep[@]}")
}

# _jq_kill PID: TERM the process group of a watchdog-started PID, then KILL it; reap it
_jq_kill() {
	local pid=$1
	if ! _jq_exited "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		if _jq_reap "$pid" 5; then return 0; fi
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	_jq_reap "$pid" 5 || true
}

jq_bg() {
	if declare -F "$1" >/dev/null; then
		export -f "${1?}"
		timeout -k 10 "$JQ_WATCHDOG" bash -c '"$@"' jq_bg "$@" 3>&- &
	else
		timeout -k 10 "$JQ_WATCHDOG" "$@" 3>&- &
	fi
	JQ_PIDS+=("$!")
}

wait_pid() {
	local secs=${2:-${BATS_TEST_TIMEOUT:-120}}
	if ! _jq_reap "$1" "$secs"; then
		echo "wait_pid: process $1 still running after ${secs}s" >&2
		return 1
	fi
	# shellcheck disable=SC2034 # bats' $status
	status=$_jq_rc
}

wait_for_file() {
	local i n=$((${2:-$JQ_WAIT} * 20))
	for ((i = 0; i <= n; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.05
	done
	echo "wait_for_file: $1 did not appear within ${2:-$JQ_WAIT}s" >&2
	return 1
}

# wait_for_line FILE TEXT [N]: wait until FILE holds N (default 1) lines containing TEXT
wait_for_line() {
	local i n=${3:-1}
	for ((i = 0; i < JQ_WAIT * 20; i++)); do
		(($(grep -cF -- "$2" "$1" 2>/dev/null) >= n)) && return 0
		sleep 0.05
	done
	echo "wait_for_line: '$2' x$n not in $1:" >&2
	cat "$1" >&2
	return 1
}

# wait_log TEXT: wait until the server's log ($SERVER_LOG) holds TEXT (a fixed string)
wait_log() {
	local i
	for ((i = 0; i <= JQ_WAIT * 20; i++)); do
		grep -qF -- "$1" "$SERVER_LOG" && return 0
		sleep 0.05
	done
	echo "wait_log: '$1' not in $SERVER_LOG within ${JQ_WAIT}s:" >&2
	cat "$SERVER_LOG" >&2
	return 1
}

# wait_log_re REGEX [N]: wait until the server's log holds N lines (default 1) matching
# REGEX (grep -E)
wait_log_re() {
	local i c
	for ((i = 0; i <= JQ_WAIT * 20; i++)); do
		c=$(grep -cE -- "$1" "$SERVER_LOG" || true)
		((c >= ${2:-1})) && return 0
		sleep 0.05
	done
	echo "wait_log_re: '$1' ${2:-1} times: not in $SERVER_LOG within ${JQ_WAIT}s" >&2
	return 1
}

start_server() {
	local a listen=(-l 127.0.0.1:0) n suffix addr_file i
	[[ -n ${JQ_TMP:-} && -d $JQ_TMP ]] || jq_tmpdir
	JQ_NSERVERS=$((${JQ_NSERVERS:-0} + 1))
	n=$JQ_NSERVERS
	suffix=
	((n == 1)) || suffix=$n
	for a in "$@"; do
		case $a in
		--) break ;;
		-l | -l?* | --listen | --listen=*) listen=() ;;
		esac
	done
	addr_file=$JQ_TMP/addr$suffix
	SERVER_LOG=$JQ_TMP/server$suffix.log
	rm -f "$addr_file"
	timeout -k 10 "$JQ_WATCHDOG" jq-serve --addr-file "$addr_file" "${listen[@]}" "$@" \
		>"$SERVER_LOG" 2>&1 3>&- &
	SERVER_PID=$!
	JQ_PIDS+=("$SERVER_PID")
	export SERVER_PID SERVER_LOG
	n=$((JQ_WAIT * 20))
	for ((i = 0; i <= n; i++)); do
		[[ -s $addr_file ]] && break
		if _jq_exited "$SERVER_PID"; then
			_jq_reap "$SERVER_PID" 1 || true
			echo "start_server: jq-serve $* exited with status $_jq_rc before listening:" >&2
			cat "$SERVER_LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	if [[ ! -s $addr_file ]]; then
		echo "start_server: jq-serve $* wrote no address file within ${JQ_WAIT}s:" >&2
		cat "$SERVER_LOG" >&2
		return 1
	fi
	SERVER_ADDRS=$(<"$addr_file")
	SERVER=${SERVER_ADDRS%%$'\n'*}
	export SERVER SERVER_ADDRS
}

start_server_unix() {
	local sock
	[[ -n ${JQ_TMP:-} && -d $JQ_TMP ]] || jq_tmpdir
	sock=$JQ_TMP/sock
	[[ ! -e $sock ]] || sock=$JQ_TMP/sock$((${JQ_NSERVERS:-0} + 1))
	start_server -l "unix:$sock" "$@"
}

stop_server() {
	local pid=${1:-${SERVER_PID:-}}
	[[ -n $pid ]] || return 0
	if ! _jq_exited "$pid"; then
		# the watchdog (timeout) passes one SIGTERM on to jq-serve
		kill -TERM "$pid" 2>/dev/null || true
		if ! _jq_reap "$pid" 5; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	_jq_reap "$pid" 5 || true
	return 0
}

wait_server_exit() {
	local secs=${1:-${BATS_TEST_TIMEOUT:-120}}
	if ! _jq_reap "${SERVER_PID:?no server started}" "$secs"; then
		echo "wait_server_exit: jq-serve (pid $SERVER_PID) still running after ${secs}s" >&2
		return 1
	fi
	# shellcheck disable=SC2034 # bats' $status
	status=$_jq_rc
}

jq_setup() {
	local w
	unset JQ_SERVER
	D=$BATS_TEST_TMPDIR/d
	for w in "$@"; do
		[[ $w != root ]] || D=$BATS_TEST_TMPDIR
	done
	mkdir -p "$D"
	for w in "$@"; do
		case $w in
		root) ;;
		sock) jq_tmpdir ;;
		bytes) export LC_ALL=C ;;
		worker)
			TMPD=$D/tmp
			M=$D/marks
			mkdir -p "$TMPD" "$M" "$D/in"
			export M JQ_STATE_DIR=$D/state
			;;
		*)
			echo "jq_setup: unknown word: $w" >&2
			return 1
			;;
		esac
	done
}

# serve_refused: see the top of this file (bounded by timeout in case it does listen)
serve_refused() {
	local want=$1
	shift
	rm -f "$D/addr"
	run --separate-stderr timeout -k 5 30 jq-serve --addr-file "$D/addr" -l 127.0.0.1:0 "$@"
	if ((status != want)); then
		# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
		echo "jq-serve $*: exit $status, expected $want; stderr: $stderr" >&2
		return 1
	fi
	assert_file_not_exist "$D/addr"
	[[ $stderr == jq-serve:* ]]
}

# json_file_check: see the top of this file
json_file_check() {
	local f=$1
	shift
	python3 - "$f" "$@" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1], encoding="utf-8"))
for expr in sys.argv[2:]:
    if not eval(expr):
        sys.exit("false: %s\ndocument: %s" % (expr, json.dumps(j, indent=1)))
EOF
}

free_tcp_port() {
	local port try
	for ((try = 0; try < 100; try++)); do
		# below the kernel's ephemeral range (32768 up): no connecting
		# socket is ever given it as its own port
		port=$((20000 + RANDOM % 12000))
		if [[ -z $(ss -ltnH "sport = :$port") ]]; then
			echo "$port"
			return 0
		fi
	done
	echo "free_tcp_port: no free port found" >&2
	return 1
}

make_files() {
	local dir=$1 n=$2 ext=${3:-dat} i j name
	mkdir -p "$dir"
	for ((i = 1; i <= n; i++)); do
		printf -v name '%s/file%04d.%s' "$dir" "$i" "$ext"
		for ((j = 0; j <= i % 5; j++)); do
			printf 'file %d of %d, line %d\n' "$i" "$n" "$j"
		done >"$name"
	done
}

jq_teardown() {
	local pid reg d log
	for pid in "${JQ_PIDS[@]}"; do
		_jq_kill "$pid"
	done
	JQ_PIDS=()
	reg=$(_jq_registry)
	if [[ -f $reg ]]; then
		while IFS= read -r d; do
			[[ $d == /tmp/jq.* && -d $d ]] || continue
			for log in "$d"/server*.log; do
				[[ -s $log ]] || continue
				echo "--- $log"
				cat "$log"
			done
			rm -rf "$d"
		done <"$reg"
		rm -f "$reg"
	fi
	unset JQ_TMP JQ_NSERVERS
	return 0
}

# _jq_is_default NAME: true when NAME is bats' empty default (or undefined)
_jq_is_default() {
	local def
	def=$(declare -f "$1") || return 0
	def=${def//[[:space:]]/}
	[[ $def == "$1(){return0}" ]]
}
if _jq_is_default teardown; then
	teardown() { jq_teardown; }
fi
if _jq_is_default teardown_file; then
	teardown_file() { jq_teardown; }
fi

# not_under_valgrind WHY: skip this test in make valgrind, which runs every program 20-50 times
# slower (the test runs in make check and make ASAN=1 check)
not_under_valgrind() {
	[[ -z ${JQ_VALGRIND_LOG:-} ]] || skip "not under valgrind: $1"
}

# hello_line VERSION [WORD...]: print a HELLO line answering the server greeting in $greeting, with the auth= proof computed by
# openssl from $JQ_TOKEN_FILE when the server asks for one (see jq-protocol(7), Authentication)
hello_line() {
	local v=$1 sn cn mac
	shift
	if [[ ${greeting:?hello_line needs the greeting} == *' auth=hmac-sha256 '* ]]; then
		sn=${greeting##* nonce=}
		sn=${sn%% *}
		cn=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
		mac=$(printf 'jq-auth-1 client %s %s' "$sn" "$cn" |
			openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(cat "$JQ_TOKEN_FILE")" -r)
		set -- "$@" "auth=$cn:${mac%% *}"
	fi
	echo "HELLO $v${*:+ $*}"
}

# input_fingerprint FILE: print the fingerprint of FILE as jq-serve records it at start (16 hex
# digits: FNV-1a over its device, inode, size and mtime in ns, 8 bytes little-endian each)
input_fingerprint() {
	python3 -c '
import os, sys
st = os.stat(sys.argv[1])
h = 0xcbf29ce484222325
for v in (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
    for b in (v & (2**64 - 1)).to_bytes(8, "little"):
        h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print("%016x" % h)' "$1"
}

# old_token FILE: print an attempt token that an earlier server instance could have handed out
# for FILE (instance 0badc0de, attempt 1, FILE's fingerprint); a server matches it by the input
old_token() {
	echo "0badc0de00000001$(input_fingerprint "$1")"
}

# old_handle ID FILE: print a jq-put handle (ID:TOKEN) for job ID whose input is FILE, with an
# old_token: how a test puts a result for a job nobody took (the server matches it by the input)
old_handle() {
	echo "$1:$(old_token "$2")"
}

# assert_handle ID: $output (what jq-take printed) is the handle of job ID, ID:TOKEN; it is kept
# in $HANDLE for jq-put
# shellcheck disable=SC2154,SC2034 # $output is bats' run's; $HANDLE is the caller's
assert_handle() {
	[[ $output =~ ^$1:[0-9a-f]{32}$ ]] || fail "expected the handle of job $1 (ID:TOKEN), got '$output'"
	HANDLE=$output
}
