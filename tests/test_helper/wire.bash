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
