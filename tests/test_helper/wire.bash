# tests/test_helper/wire.bash: speaking jq's protocol by hand from bats (see jq-protocol(7)).
# The caller opens the connection on file descriptor $conn; replies land in $line.
# Loaded by the bats files that talk to jq-serve or play a server themselves.
# shellcheck shell=bash disable=SC2034,SC2154 # $conn is the caller's; $line is read by it

# sendl LINE...: send each LINE followed by LF
sendl() { printf '%s\n' "$@" >&"$conn"; }

# send TEXT: send TEXT as it is (printf %s)
send() { printf '%s' "$1" >&"$conn"; }

# recv: read one reply line (CR removed) into $line, waiting at most 20 s
recv() {
	local rc=0
	line=
	IFS= read -t 20 -r line <&"$conn" || rc=$?
	if ((rc != 0)); then
		echo "recv: no complete line (read status $rc, partial '$line')" >&2
		return 1
	fi
	line=${line%$'\r'}
}

# expect GLOB: the next reply line must match GLOB
expect() {
	recv || return 1
	# shellcheck disable=SC2053 # $1 is a pattern on purpose
	if [[ $line != $1 ]]; then
		echo "expected a line matching '$1', got '$line'" >&2
		return 1
	fi
}

# crc32c: print the CRC-32C of standard input as 8 lowercase hex digits
crc32c() {
	python3 -c '
import sys
c = 0xffffffff
for b in sys.stdin.buffer.read():
    c ^= b
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
print("%08x" % (c ^ 0xffffffff))'
}

# payload DATA: print DATA framed as one chunk plus the END line
payload() {
	local data=$1
	if ((${#data} > 0)); then
		printf 'DATA %d\n%s' "${#data}" "$data"
	fi
	printf 'END %d %s\n' "${#data}" "$(printf '%s' "$data" | crc32c)"
}

# take_job [WORD...]: send TAKE [WORD...] and read its JOB line: the job's id goes to $job, the
# attempt token (jq-protocol(7), "Attempt tokens") to $token; the payload is left to the caller
take_job() {
	sendl "TAKE${*:+ $*}"
	expect 'JOB *' || return 1
	job=${line#JOB }
	job=${job%% *}
	job_token
}

# job_token: set $token to the token= word of the JOB line in $line
job_token() {
	if [[ $line != *' token='* ]]; then
		echo "no token= in '$line'" >&2
		return 1
	fi
	token=${line##* token=}
	token=${token%% *}
}

# skip_payload: read a payload (DATA chunks and END) and drop its bytes
skip_payload() {
	local n
	while recv; do
		case $line in
		'DATA '*)
			n=${line#DATA }
			IFS= read -t 20 -r -N "$n" _ <&"$conn" || return 1
			;;
		'END '*) return 0 ;;
		*)
			echo "unexpected line in payload: '$line'" >&2
			return 1
			;;
		esac
	done
	return 1
}

# take_token [WORD...]: take_job, then drop the job's data: $job and $token stay
take_token() {
	take_job "$@" && skip_payload
}
