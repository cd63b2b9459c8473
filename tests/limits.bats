#!/usr/bin/env bats
# Requests in flight per connection are bounded: a client that pipelines requests without
# reading the replies makes the server stop handling them (and then stop reading), instead of
# buffering replies without end; nothing is lost once it reads, and others are served meanwhile.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# rss_kib PID: the resident set of the jq-serve under watchdog PID, in KiB
rss_kib() {
	local child
	child=$(pgrep -P "$1" -x jq-serve)
	awk '/^VmRSS:/ { print $2 }' "/proc/$child/status"
}

@test "300000 pipelined STATs that nobody reads: the server's memory stays flat, then every reply arrives" {
	printf 'x\n' >"$D/a"
	start_server --no-auth "$D/a"
	local conn n=300000 before after line
	before=$(rss_kib "$SERVER_PID")
	exec {conn}<>"/dev/tcp/${SERVER%:*}/${SERVER##*:}"
	IFS= read -t 20 -r line <&"$conn"	# the greeting
	[[ $line == "JQ 2 "* ]]
	# about 45 MB of replies if the server answered them all into memory
	{
		printf 'HELLO 2\n'
		yes STAT | head -n "$n"
		printf 'QUIT\n'
	} >"$D/requests"
	timeout 120 cat "$D/requests" >&"$conn" &
	local writer=$!
	# the writer stalls once the server stops reading: wait until our send queue stops moving
	local i prev=-1 cur
	for ((i = 0; i < 600; i++)); do
		sleep 0.1
		cur=$(ss -tnH state established "( dport = :${SERVER##*:} )" | awk '{ print $2 }' | head -n 1)
		[[ $cur == "$prev" && $cur -gt 0 ]] && break
		kill -0 "$writer" 2>/dev/null || break	# all sent: nothing held it back
		prev=$cur
	done
	after=$(rss_kib "$SERVER_PID")
	echo "# jq-serve RSS before ${before} KiB, with the client stalled ${after} KiB" >&3
	((after < before + 16384))
	# another client is served meanwhile
	run -0 jq-stat --no-auth "$SERVER"
	assert_line --regexp '^jobs +1 total'
	# reading now brings every reply, in order, and the QUIT's goodbye
	run -0 bash -c 'timeout 120 cat <&'"$conn"' | grep -c "^END$"'
	assert_output "$n"
	wait "$writer"
	exec {conn}<&-
}
