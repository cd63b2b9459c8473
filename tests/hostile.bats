#!/usr/bin/env bats
# tests/hostile.bats: jq-serve against a hostile peer (issue 5).
#
# Most of it is a table, tests/hostile/cases (its columns are described at its top): one
# malformed or borderline input per row, each sent on a fresh connection; the replies are checked
# line by line, then the row proves that the stream is still in sync (STAT is answered on the
# same connection) or that the server closed the connection where the protocol says so
# (ERR VERSION, LIMIT, FRAMING, AUTH).  Every row runs even when an earlier one failed, and a
# failure names the row by its line in the table and its label.
#
# Then the replay of a sniffed handshake, exhaustion and time limits: thousands of idle
# connections while a worker runs every job, --max-conns, --stall-timeout, --idle-timeout, the
# time allowed for the handshake (tests/limits.bats has the client that never reads replies).
# These wait for each event with a generous deadline and never assert that something was fast.

# shellcheck disable=SC2030,SC2031 # each test runs in its own subshell: $conn is per test

bats_require_minimum_version 1.5.0

CASES=$BATS_TEST_DIRNAME/hostile/cases
# the categories of the table, each run by one test below
CATEGORIES='garbage longline args percent-hello percent-take keys numbers numbers-hello
	toobig crlf framing state prehello foreign auth'
# seconds to wait for one reply line (a server that answers at all needs milliseconds)
RECV_T=10

setup() {
	load test_helper/common
	jq_setup bytes
	shopt -s extglob
	# the fixture's job count (the @stat check of the table wants total=NJOBS)
	NJOBS=8
	conn=
	SERVER_PIDS=()
	AUTH_CNS=()
	fast crc_init
}

# fast CMD [ARG]...: run CMD without bats' DEBUG trap, which runs before every command and
# would make the loops over hundreds of rows or thousands of connections take minutes
# (set +T: functions called from here do not inherit it).  Call it as a plain command, never in
# an || or && list, so that set -e still stops CMD at its first failure.
fast() {
	set +T
	"$@"
	set -T
}

# crc_init: the CRC-32C (Castagnoli, reflected) table in CRC_T
crc_init() {
	local i j c
	CRC_T=()
	for ((i = 0; i < 256; i++)); do
		c=$i
		for ((j = 0; j < 8; j++)); do
			if ((c & 1)); then c=$(((c >> 1) ^ 0x82F63B78)); else c=$((c >> 1)); fi
		done
		CRC_T[i]=$c
	done
}

# crc32c TEXT: set $crc to the CRC-32C of the bytes that printf %b TEXT gives (8 hex digits)
crc32c() {
	local c=0xFFFFFFFF b
	for b in $(printf '%b' "$1" | od -An -v -tu1); do
		c=$((CRC_T[(c ^ b) & 255] ^ (c >> 8)))
	done
	printf -v crc '%08x' $((c ^ 0xFFFFFFFF))
}

# rand_hex: set $hex to 64 random hex digits
rand_hex() {
	local i
	hex=
	for ((i = 0; i < 8; i++)); do printf -v hex '%s%08x' "$hex" "$SRANDOM"; done
}

# hmac ROLE SNONCE CNONCE: print the handshake MAC (HMAC-SHA-256 keyed with the token over
# "jq-auth-1 ROLE SNONCE CNONCE"), as a client computes it with openssl
hmac() {
	printf 'jq-auth-1 %s %s %s' "$1" "$2" "$3" |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$TOKEN" -r | cut -d' ' -f1
}

# auth_word [VARIANT]: set $word to an auth=CNONCE:MAC word for the server nonce $nonce, right
# or wrong in the way VARIANT says (see the table); every cnonce sent is added to AUTH_CNS
auth_word() {
	local cn mac l
	rand_hex
	cn=$hex
	case $1 in
	cnshort) cn=${cn:1} ;;
	cnnothex) cn=${cn//?/z} ;;
	esac
	mac=$(hmac client "$nonce" "$cn")
	case $1 in
	'' | cnshort | cnnothex) ;;
	badmac)
		l=0
		[[ ${mac: -1} != 0 ]] || l=1
		mac=${mac:0:63}$l
		;;
	zero) mac=${mac//?/0} ;;
	short) mac=${mac:1} ;;
	long) mac=${mac}0 ;;
	server) mac=$(hmac server "$nonce" "$cn") ;;
	swap) mac=$(hmac client "$cn" "$nonce") ;;
	other)
		rand_hex
		mac=$(hmac client "$hex" "$cn")
		;;
	plain)
		word=auth=$TOKEN
		return 0
		;;
	nocn) cn= ;;
	nomac) mac= ;;
	*)
		why="the table names an unknown auth variant '$1'"
		return 1
		;;
	esac
	AUTH_CNS+=("$cn")
	word=auth=$cn:$mac
}

# repeat N TEXT: set $rep to TEXT repeated N times
repeat() {
	local n=$1 s=$2
	rep=
	while ((n > 0)); do
		if ((n & 1)); then rep+=$s; fi
		s+=$s
		n=$((n >> 1))
	done
}

# expand TEXT: set $bytes to TEXT with the table's macros expanded ({N*TEXT}, {crc:TEXT},
# {pay:TEXT}, {auth}, {auth:VARIANT}, {tok:N}, {old:N}); the result is still printf %b escapes
expand() {
	local s=$1 m t n r
	local re_rep='\{([0-9]+)\*([^{}]*)\}' re_fn='\{(crc|pay):([^{}]*)\}'
	local re_auth='\{auth(:([a-z]+))?\}' re_tok='\{(tok|old):([0-9]+)\}'
	while [[ $s =~ $re_tok ]]; do
		m=${BASH_REMATCH[0]} n=${BASH_REMATCH[2]}
		if [[ ${BASH_REMATCH[1]} == tok ]]; then r=${TOK[n]:-}; else r=${OLD[n]:-}; fi
		if [[ -z $r ]]; then
			why="the table's $m names no token of the fixture"
			return 1
		fi
		s=${s/"$m"/"token=$r"}
	done
	while [[ $s =~ $re_rep ]]; do
		m=${BASH_REMATCH[0]}
		repeat "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
		s=${s/"$m"/"$rep"}
	done
	while [[ $s =~ $re_fn ]]; do
		m=${BASH_REMATCH[0]} t=${BASH_REMATCH[2]}
		crc32c "$t"
		if [[ ${BASH_REMATCH[1]} == crc ]]; then
			r=$crc
		else
			n=$(printf '%b' "$t" | wc -c)
			if ((n > 0)); then
				r="DATA $n\\n$t""END $n $crc\\n"
			else
				r='END 0 00000000\n'
			fi
		fi
		s=${s/"$m"/"$r"}
	done
	while [[ $s =~ $re_auth ]]; do
		m=${BASH_REMATCH[0]}
		auth_word "${BASH_REMATCH[2]}" || return 1
		s=${s/"$m"/"$word"}
	done
	bytes=$s
}

# conn_open ADDR: connect fd $conn to the TCP server ADDR (host:port) and read its greeting into
# $greeting, its nonce (if any) into $nonce; on failure $why says why
conn_open() {
	conn=
	nonce=
	if ! exec {conn}<>"/dev/tcp/${1%:*}/${1##*:}"; then
		conn=
		why="cannot connect to $1"
		return 1
	fi
	recv || {
		why="no greeting: $why"
		return 1
	}
	greeting=$line
	if [[ $greeting =~ \ nonce=([0-9a-f]{64})( |$) ]]; then nonce=${BASH_REMATCH[1]}; fi
	return 0
}

# conn_close: close fd $conn, if open
conn_close() {
	if [[ -n ${conn:-} ]]; then exec {conn}>&-; fi
	conn=
}

# send TEXT: write the bytes printf %b TEXT gives to $conn (bash writes them a line at a time)
send() {
	{ printf '%b' "$1" >&"$conn"; } 2>/dev/null || {
		why="could not send: the connection is closed"
		return 1
	}
}

# send_once TEXT: the same in one write(2) (through a file: bash variables cannot hold NUL),
# so that the server has the whole row when it decides to close
send_once() {
	# bash writes one line at once by itself
	if [[ ${1%\\n} != *\\n* ]]; then
		send "$1"
		return
	fi
	{ printf '%b' "$1" >"$BATS_TEST_TMPDIR/row" && cat "$BATS_TEST_TMPDIR/row" >&"$conn"; } 2>/dev/null || {
		why="could not send: the connection is closed"
		return 1
	}
}

# short TEXT: set $s to TEXT cut to 160 characters, for messages
short() {
	s=$1
	((${#s} <= 160)) || s="${s:0:160}...(${#1} bytes)"
}

# recv: read one reply line (CR removed) from $conn into $line, waiting at most $RECV_T s
recv() {
	local rc=0
	line=
	IFS= read -t "$RECV_T" -r line <&"$conn" || rc=$?
	if ((rc != 0)); then
		short "$line"
		if ((rc > 128)); then
			why="no reply line within ${RECV_T}s (partial '$s')"
		else
			why="the connection was closed (partial line '$s')"
		fi
		return 1
	fi
	line=${line%$'\r'}
}

# expect_tok TOKEN: the next reply must match TOKEN: a glob for one line, @stat for a whole
# STAT reply of a server with $NJOBS jobs, @okauth for the OK of HELLO with the server's proof
expect_tok() {
	local want
	case $1 in
	@stat)
		recv || return 1
		if [[ $line != "STAT total=$NJOBS "* ]]; then
			short "$line"
			why="expected a STAT reply, got '$s'"
			return 1
		fi
		while recv; do
			[[ $line != END ]] || return 0
		done
		why="in the STAT reply: $why"
		return 1
		;;
	@okauth)
		# the server's proof over a cnonce sent on this connection (a row may send two HELLOs)
		recv || return 1
		for want in "${AUTH_CNS[@]}"; do
			[[ $line != "OK 2 auth=$(hmac server "$nonce" "$want")" ]] || return 0
		done
		short "$line"
		why="expected OK 2 auth=<the server's proof for one of our ${#AUTH_CNS[@]} cnonces>, got '$s'"
		return 1
		;;
	*)
		recv || return 1
		# shellcheck disable=SC2053 # $1 is a pattern on purpose
		if [[ $line != $1 ]]; then
			short "$line"
			why="expected '$1', got '$s'"
			return 1
		fi
		;;
	esac
}

# expect_eof: the server closed the connection: no more bytes, within $RECV_T s
expect_eof() {
	local rc=0 rest
	{ IFS= read -t "$RECV_T" -r rest <&"$conn"; } 2>/dev/null || rc=$?
	if ((rc != 1)) || [[ -n $rest ]]; then
		short "$rest"
		if ((rc > 128)); then
			why="expected the connection closed, but it is still open after ${RECV_T}s"
		else
			why="expected the connection closed, got '$s'"
		fi
		return 1
	fi
}

# check_outcome OUTCOME: what must hold after a row's replies (see the table); uses run_row's $addr
check_outcome() {
	case $1 in
	sync) send 'STAT\n' && expect_tok @stat ;;
	hello) send 'HELLO 2\n' && expect_tok 'OK 2' && check_outcome sync ;;
	auth) expand 'HELLO 2 {auth}\n' && send "$bytes" && expect_tok @okauth && check_outcome sync ;;
	closed)
		# a request, so that a server that wrongly keeps the connection answers at once (the
		# write fails, or is reset, when it did close)
		send 'STAT\n' || :
		expect_eof
		;;
	drop)
		conn_close
		conn_open "$addr" && send 'HELLO 2\n' && expect_tok 'OK 2' && check_outcome sync
		;;
	*)
		why="unknown outcome '$1'"
		return 1
		;;
	esac
}

# split_tabs TEXT: set the array f to the TAB-separated fields of TEXT (a run of TABs counts as
# one; no globbing)
split_tabs() {
	local IFS=$'\t'
	set -f
	# shellcheck disable=SC2206 # split on purpose
	f=($1)
	set +f
}

# rows_load: read the table into ROW_LN (line numbers), ROW_CAT, ROW_LABEL, ROW_BYTES, ROW_EXP
# (the expected replies, TAB-separated) and ROW_OUT
rows_load() {
	local l ln=0 j
	local -a f
	ROW_LN=() ROW_CAT=() ROW_LABEL=() ROW_BYTES=() ROW_EXP=() ROW_OUT=()
	while IFS= read -r l || [[ -n $l ]]; do
		ln=$((ln + 1))
		[[ $l != '#'* && -n ${l//[[:space:]]/} ]] || continue
		split_tabs "$l"
		ROW_LN+=("$ln")
		ROW_CAT+=("${f[0]}")
		ROW_LABEL+=("${f[1]:-}")
		ROW_BYTES+=("${f[2]:-}")
		ROW_OUT+=("${f[-1]}")
		j=
		if ((${#f[@]} > 4)); then
			printf -v j '%s\t' "${f[@]:3:${#f[@]}-4}"
			j=${j%$'\t'}
		fi
		ROW_EXP+=("$j")
	done <"$CASES"
}

# row_name I: set $s to how a failure names row I
row_name() {
	short "${ROW_BYTES[$1]}"
	s="hostile/cases:${ROW_LN[$1]} [${ROW_CAT[$1]}] '${ROW_LABEL[$1]}' (sent '$s')"
}

# run_row I: run row I of the table on a new connection; on failure $why says what went wrong
run_row() {
	local i=$1 e addr=$NOAUTH_SERVER mode=hello
	local -a exp f
	AUTH_CNS=()
	case ${ROW_CAT[i]} in
	auth) addr=${AUTH_SERVER:-} mode=auth ;;
	percent-hello | numbers-hello | prehello | foreign) mode=prehello ;;
	esac
	why=
	if [[ -z $addr ]]; then
		why="no server for this category started"
		return 1
	fi
	conn_open "$addr" || return 1
	case $mode in
	auth)
		if [[ -z $nonce ]]; then
			why="the greeting has no nonce=: '$greeting'"
			return 1
		fi
		;;
	hello)
		if ! { send 'HELLO 2\n' && expect_tok 'OK 2'; }; then
			why="HELLO before the row: $why"
			return 1
		fi
		;;
	esac
	expand "${ROW_BYTES[i]}" || return 1
	# the server may close before it has read everything: what it answered still counts
	send_once "$bytes" || [[ ${ROW_OUT[i]} == closed ]] || return 1
	split_tabs "${ROW_EXP[i]}"
	exp=("${f[@]}")
	for e in "${exp[@]}"; do
		expect_tok "$e" || return 1
	done
	check_outcome "${ROW_OUT[i]}" || {
		why="then '${ROW_OUT[i]}': $why"
		return 1
	}
}

# run_rows CATEGORY...: run every row of these categories; report every failed row, and fail
# if any failed, if none ran, or if a server died
run_rows() {
	local i c n=0 p
	local -a failed=()
	rows_load
	# a write to a connection the server closed must fail, not kill the test
	trap '' PIPE
	for ((i = 0; i < ${#ROW_CAT[@]}; i++)); do
		for c in "$@"; do
			[[ ${ROW_CAT[i]} == "$c" ]] || continue
			n=$((n + 1))
			if ! run_row "$i"; then
				row_name "$i"
				failed+=("$s: $why")
			fi
			conn_close
			for p in "${SERVER_PIDS[@]}"; do
				if _jq_exited "$p"; then
					row_name "$i"
					failed+=("$s: jq-serve (pid $p) DIED after this row")
					break 3
				fi
			done
		done
	done
	trap - PIPE
	if ((n == 0)); then
		echo "no rows of category $* in $CASES" >&2
		return 1
	fi
	if ((${#failed[@]} > 0)); then
		echo "${#failed[@]} of $n rows ($*) failed:" >&2
		printf '  %s\n' "${failed[@]}" >&2
		return 1
	fi
}

# jobs_files: $D/job1 ... $D/job$NJOBS, into the array JOBS
jobs_files() {
	local i
	JOBS=()
	for ((i = 1; i <= NJOBS; i++)); do
		printf 'data of job %d\n' "$i" >"$D/job$i"
		JOBS+=("$D/job$i")
	done
}

# recv_job ID: read a JOB reply for job ID (kept in $job_line) and its payload
recv_job() {
	local n
	expect_tok "JOB $1 *" || return 1
	job_line=$line
	while recv; do
		case $line in
		'DATA '*)
			n=${line#DATA }
			IFS= read -t "$RECV_T" -r -N "$n" _ <&"$conn" || {
				why="short job data"
				return 1
			}
			;;
		'END '*) return 0 ;;
		*)
			why="unexpected line in job data: '$line'"
			return 1
			;;
		esac
	done
	return 1
}

# fixture_take ID: TAKE on $conn, which must hand out job ID; its attempt token goes to TOK[ID]
fixture_take() {
	send 'TAKE\n' && recv_job "$1" || fail "fixture: $why"
	TOK[$1]=${job_line##* token=}
	[[ ${TOK[$1]} =~ ^[0-9a-f]{32}$ ]] || fail "fixture: no token in '$job_line'"
}

# fixture: jq-serve --no-auth over the table's jobs, brought to the state the
# table expects: 1 done, 2 failed, 3 running (hold=lease), the others waiting; --max-result 1000.
# The table's {tok:N} is the token of the fixture's attempt of job N (1, 2, 3); {old:N} a token
# an earlier server instance could have handed out for job N's input (jq-protocol(7), "Attempt
# tokens"), which this server matches by the input: the way to name a job nobody took.
fixture() {
	local i
	jobs_files
	start_server --no-auth --max-result 1000 "${JOBS[@]}"
	NOAUTH_SERVER=$SERVER
	SERVER_PIDS+=("$SERVER_PID")
	TOK=() OLD=()
	for ((i = 1; i <= NJOBS; i++)); do OLD[i]=$(old_token "$D/job$i"); done
	conn_open "$SERVER" || fail "fixture: $why"
	send 'HELLO 2\n' && expect_tok 'OK 2' || fail "fixture: $why"
	fixture_take 1
	expand 'PUT 1 {tok:1}\n{pay:result one}'
	send "$bytes" && expect_tok 'OK 1' || fail "fixture: $why"
	fixture_take 2
	expand 'FAIL 2 {tok:2} exit=3\n{pay:it broke}'
	send "$bytes" && expect_tok 'OK 2 done=1' || fail "fixture: $why"
	fixture_take 3
	conn_close
	fixture_check
}

# fixture_check: the fixture's jobs are still in the state fixture left them in
fixture_check() {
	conn_open "$NOAUTH_SERVER" || fail "fixture check: $why"
	send 'HELLO 2\nSTAT\n' || fail "fixture check: $why"
	expect_tok 'OK 2' || fail "fixture check: $why"
	recv || fail "fixture check: $why"
	[[ $line == "STAT total=$NJOBS waiting=$((NJOBS - 3)) running=1 done=1 failed=1 "* ]] ||
		fail "the jobs' states changed: $line"
	conn_close
}

# auth_server [ARG]...: jq-serve ARG... with authentication on (its token is $JQ_TOKEN_FILE,
# created by the server) over the table's jobs; the token's hex in $TOKEN
auth_server() {
	jobs_files
	start_server "$@" "${JOBS[@]}"
	AUTH_SERVER=$SERVER
	SERVER_PIDS+=("$SERVER_PID")
	assert_file_exist "$JQ_TOKEN_FILE"
	TOKEN=$(tr -d '\n' <"$JQ_TOKEN_FILE")
	[[ $TOKEN =~ ^[0-9a-fA-F]{32,128}$ ]] || fail "token file $JQ_TOKEN_FILE holds '$TOKEN'"
}

# auth_hello: on $conn (just greeted with $nonce), do a valid handshake and check the proof
auth_hello() {
	expand 'HELLO 2 {auth}\n' && send "$bytes" && expect_tok @okauth
}

# table_check: every row of the table is well-formed, every category has rows, there are at
# least 250 rows; the counts per category go to the TAP output
table_check() {
	local i c n bad=() counts=
	local -A per=() labels=()
	rows_load
	n=${#ROW_CAT[@]}
	for ((i = 0; i < n; i++)); do
		row_name "$i"
		c=${ROW_CAT[i]}
		per[$c]=$((${per[$c]:-0} + 1))
		[[ " ${CATEGORIES//[[:space:]]/ } " == *" $c "* ]] || bad+=("$s: unknown category")
		[[ -n ${ROW_LABEL[i]} && -n ${ROW_BYTES[i]} ]] || bad+=("$s: too few columns")
		[[ -z ${labels[$c/${ROW_LABEL[i]}]:-} ]] || bad+=("$s: label used twice")
		labels[$c/${ROW_LABEL[i]}]=1
		case ${ROW_OUT[i]} in
		sync | closed) ;;
		hello)
			case $c in
			percent-hello | numbers-hello | prehello | foreign) ;;
			*) bad+=("$s: 'hello' outcome after HELLO was said") ;;
			esac
			;;
		auth) [[ $c == auth ]] || bad+=("$s: 'auth' outcome without authentication") ;;
		drop) [[ $c != auth ]] || bad+=("$s: 'drop' outcome with authentication") ;;
		*) bad+=("$s: unknown outcome '${ROW_OUT[i]}'") ;;
		esac
		[[ -n ${ROW_EXP[i]} || ${ROW_OUT[i]} == drop ]] || bad+=("$s: no expected reply")
	done
	for c in $CATEGORIES; do
		((${per[$c]:-0} > 0)) || bad+=("category $c has no rows")
		counts+=" $c=${per[$c]:-0}"
	done
	echo "# $n rows:$counts" >&3
	if ((${#bad[@]} > 0)); then
		printf '%s\n' "${bad[@]}" >&2
		return 1
	fi
	((n >= 250)) || fail "only $n rows in $CASES; at least 250 are required"
}

@test "the table holds at least 250 well-formed rows, in known categories" {
	fast table_check
}

@test "garbage bytes (NUL, 0xff, control bytes, UTF-8 junk) get ERR PROTO and keep the stream" {
	fast fixture
	fast run_rows garbage
	fast fixture_check
}

@test "over-long lines get ERR TOOLONG and are skipped to their LF; lines at the limit pass" {
	fast fixture
	fast run_rows longline
	fast fixture_check
}

@test "every command with missing, extra or malformed words gets an error, in sync" {
	fast fixture
	fast run_rows args
	fast fixture_check
}

@test "bad percent-encoding and bad, unknown or duplicated keys" {
	fast fixture
	fast run_rows percent-hello percent-take keys
	fast fixture_check
}

@test "numbers: signs, bases, blanks, leading zeros, overflow and wrap-around" {
	fast fixture
	fast run_rows numbers numbers-hello
	fast fixture_check
}

@test "payloads over the size limits get ERR TOOBIG and are skipped byte for byte" {
	fast fixture
	fast run_rows toobig
	fast fixture_check
}

@test "CR and LF variants" {
	fast fixture
	fast run_rows crlf
	fast fixture_check
}

@test "payload framing: checksum errors keep the stream, broken frames close it" {
	fast fixture
	fast run_rows framing
	fast fixture_check
}

@test "unknown ids and jobs in the wrong state" {
	fast fixture
	fast run_rows state
	fast fixture_check
}

@test "requests before HELLO (authentication off) get ERR HELLO and keep the stream" {
	fast fixture
	fast run_rows prehello
	fast fixture_check
}

@test "other protocols (HTTP, TLS, SSH, Redis, PROXY...) sent to the port" {
	fast fixture
	fast run_rows foreign
	fast fixture_check
}

@test "authentication on: anything but a correct HELLO gets ERR AUTH and the connection closed" {
	fast auth_server
	fast run_rows auth
}

@test "a sniffed handshake replayed on another connection is refused" {
	local a line_a nonce_a
	auth_server
	trap '' PIPE
	conn_open "$AUTH_SERVER" || fail "$why"
	a=$conn nonce_a=$nonce
	expand 'HELLO 2 name=victim {auth}\n'
	line_a=$bytes
	# the same line on another connection (another nonce) is refused
	conn_open "$AUTH_SERVER" || fail "$why"
	[[ $nonce != "$nonce_a" ]] || fail "two connections got the same nonce $nonce"
	send "$line_a" || fail "$why"
	expect_tok 'ERR AUTH *' || fail "replay before use: $why"
	expect_eof || fail "replay before use: $why"
	conn_close
	# on its own connection it works
	conn=$a nonce=$nonce_a
	send "$line_a" || fail "$why"
	expect_tok @okauth || fail "the original handshake: $why"
	send 'STAT\n' && expect_tok @stat || fail "STAT after the original handshake: $why"
	# replayed after it was used, on a third connection: refused as well
	conn_open "$AUTH_SERVER" || fail "$why"
	send "$line_a" || fail "$why"
	expect_tok 'ERR AUTH *' || fail "replay after use: $why"
	expect_eof || fail "replay after use: $why"
	conn_close
	# the victim's connection is unharmed
	conn=$a
	send 'STAT\n' && expect_tok @stat || fail "STAT on the original connection: $why"
	conn_close
	trap - PIPE
}

# idle_open N: open N connections to $SERVER (fds in IDLE) and check that each is greeted;
# every other one also says HELLO
idle_open() {
	local i fd
	IDLE=()
	for ((i = 0; i < $1; i++)); do
		exec {fd}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}" || fail "idle connection $i refused"
		IDLE+=("$fd")
	done
	for ((i = 0; i < $1; i++)); do
		conn=${IDLE[i]}
		expect_tok 'JQ 2 jq-serve/*' || fail "idle connection $i: $why"
		if ((i % 2 == 0)); then
			send 'HELLO 2 name=idle\n' || fail "idle connection $i: $why"
		fi
	done
	for ((i = 0; i < $1; i += 2)); do
		conn=${IDLE[i]}
		expect_tok 'OK 2' || fail "idle connection $i: $why"
	done
	conn=
}

# idle_check GLOB: every 97th idle connection still answers STAT (with a line matching GLOB
# if it said HELLO, with ERR HELLO if not); then all are closed
idle_check() {
	local i fd
	for ((i = 0; i < ${#IDLE[@]}; i += 97)); do
		conn=${IDLE[i]}
		if ((i % 2 == 0)); then
			{ send 'STAT\n' && expect_tok "$1"; } || fail "idle connection $i: $why"
			while recv && [[ $line != END ]]; do :; done
		else
			{ send 'STAT\n' && expect_tok 'ERR HELLO *'; } || fail "idle connection $i: $why"
		fi
	done
	for fd in "${IDLE[@]}"; do exec {fd}>&-; done
	conn=
	IDLE=()
}

@test "2000 idle connections: a worker still runs every job, and the idle ones still answer" {
	# jq-serve raises its soft limit to the hard one; an idle connection costs it one descriptor,
	# and --max-conns keeps the files' budget at least an eighth of the rest (server_limits)
	local hard
	hard=$(ulimit -Hn)
	[[ $hard == unlimited ]] || ((hard >= 2000 * 8 / 7 + 400)) ||
		fail "the hard limit of open files (ulimit -Hn) is $hard; this test needs 2700"
	ulimit -Sn 4096
	make_files "$D/in" 40 txt
	mkdir -p "$D/tmp"
	# --linger: the server stays up after the last job, so the idle ones can be asked
	start_server --no-auth --linger 10m "$D"/in/*.txt
	fast idle_open 2000
	run timeout -k 5 120 jq-run --no-auth --tmpdir "$D/tmp" -j 2 "$SERVER" -- tr '[:lower:]' '[:upper:]'
	assert_success
	for f in "$D"/in/*.txt; do
		cmp <(tr '[:lower:]' '[:upper:]' <"$f") "$f.result" || fail "wrong or missing result for $f"
	done
	fast idle_check 'STAT total=40 waiting=0 running=0 done=40 failed=0 *'
}

@test "past --max-conns a new connection gets ERR LIMIT and is closed; the others keep working" {
	local i c=() fd ok=0
	printf 'x\n' >"$D/a"
	NJOBS=1
	start_server --no-auth --max-conns 5 "$D/a"
	trap '' PIPE
	for ((i = 0; i < 5; i++)); do
		conn_open "$SERVER" || fail "connection $i: $why"
		[[ $greeting == 'JQ 2 jq-serve/'* ]] || fail "connection $i greeted with '$greeting'"
		c+=("$conn")
	done
	for ((i = 0; i < 3; i++)); do
		exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}" || fail "connect over the limit"
		expect_tok 'ERR LIMIT *' || fail "connection $((5 + i)): $why"
		expect_eof || fail "connection $((5 + i)): $why"
		conn_close
	done
	for ((i = 0; i < 5; i++)); do
		conn=${c[i]}
		send 'HELLO 2\nSTAT\n' && expect_tok 'OK 2' && expect_tok @stat ||
			fail "connection $i after the refusals: $why"
	done
	# once one closes, a new one is let in (the server notices the close soon: wait for it)
	conn=${c[0]}
	conn_close
	for ((i = 0; i < 400; i++)); do
		exec {fd}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}" || fail "connect after a close"
		conn=$fd
		recv || fail "after a close: $why"
		if [[ $line == 'JQ 2 jq-serve/'* ]]; then
			ok=1
			break
		fi
		[[ $line == 'ERR LIMIT '* ]] || fail "after a close: got '$line'"
		conn_close
		sleep 0.05
	done
	((ok)) || fail "no connection was let in within 20 s of one closing"
	send 'HELLO 2\nSTAT\n' && expect_tok 'OK 2' && expect_tok @stat || fail "the new one: $why"
	conn_close
	for ((i = 1; i < 5; i++)); do
		conn=${c[i]}
		send 'STAT\n' && expect_tok @stat || fail "connection $i at the end: $why"
		conn_close
	done
	trap - PIPE
}

@test "--stall-timeout closes half a line, half a payload, half a long line; others are served" {
	local a p l b
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	NJOBS=2
	RECV_T=30
	start_server --no-auth --stall-timeout 1s "$D/a" "$D/b"
	trap '' PIPE
	conn_open "$SERVER" && send 'HELLO 2\n' && expect_tok 'OK 2' || fail "$why"
	a=$conn
	send 'STA' || fail "$why"
	conn_open "$SERVER" && send 'HELLO 2\n' && expect_tok 'OK 2' || fail "$why"
	p=$conn
	# a result for job 1 that nobody took: a token of an earlier server for its input
	send "PUT 1 token=$(old_token "$D/a")\nDATA 10\nabc" || fail "$why"
	conn_open "$SERVER" && send 'HELLO 2\n' && expect_tok 'OK 2' || fail "$why"
	l=$conn
	repeat 20000 L
	send "$rep" || fail "$why"
	# meanwhile another connection is served
	conn_open "$SERVER" && send 'HELLO 2\nSTAT\n' && expect_tok 'OK 2' && expect_tok @stat ||
		fail "served while others stall: $why"
	b=$conn
	conn=$a
	expect_tok 'ERR TIMEOUT *' && expect_eof || fail "half a line: $why"
	conn_close
	conn=$p
	expect_tok 'ERR TIMEOUT *' && expect_eof || fail "half a payload: $why"
	conn_close
	conn=$l
	expect_tok 'ERR TIMEOUT *' && expect_eof || fail "half an over-long line: $why"
	conn_close
	# the idle one was left alone, and the half payload stored nothing
	conn=$b
	send 'STAT\n' && expect_tok 'STAT total=2 waiting=2 running=0 done=0 failed=0 *' ||
		fail "the connection that did not stall: $why"
	conn_close
	assert_file_not_exist "$D/a.result"
	trap - PIPE
}

@test "--idle-timeout closes an idle connection, not one holding a job or waiting in TAKE" {
	local i g h w
	printf 'x\n' >"$D/a"
	printf 'y\n' >"$D/b"
	NJOBS=2
	RECV_T=30
	start_server --no-auth --idle-timeout 1s "$D/a" "$D/b"
	trap '' PIPE
	# h holds job 1; w waits in TAKE for it; i said HELLO and idles; g never said HELLO
	conn_open "$SERVER" && send 'HELLO 2\nTAKE hold=conn\n' && expect_tok 'OK 2' &&
		recv_job 1 || fail "holder: $why"
	h=$conn
	conn_open "$SERVER" && send 'HELLO 2\nTAKE match=*/a\n' && expect_tok 'OK 2' ||
		fail "waiter: $why"
	w=$conn
	conn_open "$SERVER" && send 'HELLO 2\n' && expect_tok 'OK 2' || fail "idler: $why"
	i=$conn
	conn_open "$SERVER" || fail "silent: $why"
	g=$conn
	conn=$i
	expect_tok 'ERR TIMEOUT *idle*' && expect_eof || fail "idle after HELLO: $why"
	conn_close
	conn=$g
	expect_tok 'ERR TIMEOUT *idle*' && expect_eof || fail "idle before HELLO: $why"
	conn_close
	# quiet just as long, the holder and the waiter are still there
	conn=$h
	send 'STAT\n' && expect_tok @stat && send "RELEASE 1 token=${job_line##* token=}\n" &&
		expect_tok 'OK 1' ||
		fail "holder after the idle ones were closed: $why"
	conn=$w
	recv_job 1 || fail "waiter after the idle ones were closed: $why"
	conn_close
	conn=$h
	conn_close
	trap - PIPE
}

@test "authentication must finish within the stall timeout; an authenticated peer is served" {
	local s q v
	RECV_T=30
	auth_server --stall-timeout 1s
	trap '' PIPE
	conn_open "$AUTH_SERVER" || fail "$why"
	s=$conn
	conn_open "$AUTH_SERVER" && send 'HELLO 2' || fail "$why"
	q=$conn
	conn_open "$AUTH_SERVER" && auth_hello || fail "valid handshake: $why"
	v=$conn
	conn=$s
	expect_tok 'ERR AUTH *' && expect_eof || fail "silent before auth: $why"
	conn_close
	conn=$q
	expect_tok 'ERR AUTH *' && expect_eof || fail "half a HELLO: $why"
	conn_close
	conn=$v
	send 'STAT\n' && expect_tok @stat || fail "the authenticated one: $why"
	conn_close
	trap - PIPE
}
