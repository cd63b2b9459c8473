#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# Many inputs (issue 14, "a million jobs"): jq-serve's start-up checks every input and result
# without opening each input and without sorting them (serve.c: a hash table by identity), so
# these tests serve 20,000 files and check every result, and check that the identity checks
# still find a name given twice, two hard links and a result path that is an input when they
# hide among 20,000 others.  No timing is asserted.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup sock
}

N=20000

# many DIR: make $N inputs DIR/fNNNNN.txt, each holding its own number
many() {
	python3 - "$1" "$N" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    with open("%s/f%05d.txt" % (d, i), "w") as f:
        f.write("input %d\n" % i)
EOF
}

# check_results DIR: every input in DIR has DIR/NAME.result equal to it, and there is no other
# result; prints how many were checked
check_results() {
	python3 - "$1" <<'EOF'
import os, sys
d = sys.argv[1]
names = os.listdir(d)
inputs = sorted(n for n in names if n.endswith(".txt"))
results = set(n for n in names if n.endswith(".result"))
for n in inputs:
    with open(os.path.join(d, n), "rb") as a, open(os.path.join(d, n + ".result"), "rb") as b:
        if a.read() != b.read():
            sys.exit("%s.result differs from %s" % (n, n))
    results.discard(n + ".result")
if results:
    sys.exit("results without an input: %s" % sorted(results)[:5])
print(len(inputs))
EOF
}

@test "20,000 inputs: each served once, each result its own input's; run again, all are left out" {
	many "$D/in"
	find "$D/in" -name '*.txt' >"$D/list"
	start_server_unix --no-sync --linger 0 -T "$D/list"
	run -0 timeout -k 5 600 jq-run -j4 "$SERVER" -- cat
	[[ $output == *"$N attempts run: $N done, 0 failed"* ]]
	wait_server_exit
	[ "$status" -eq 0 ]
	run -0 check_results "$D/in"
	[ "$output" -eq "$N" ]
	# the rerun rule at this size: every result is up to date, nothing is served
	run -0 --separate-stderr timeout -k 5 120 jq-serve -l "unix:$JQ_TMP/sock2" -T "$D/list"
	[[ $stderr == *"all $N inputs already have results"* ]]
}

@test "20,000 inputs: a name given twice, two hard links and an input at a result path are each found among them, naming both" {
	many "$D/in"
	ln "$D/in/f00100.txt" "$D/in/link.txt"
	printf 'x\n' >"$D/in/f00200.txt.result.txt"
	{
		find "$D/in" -name 'f*.txt' ! -name '*.result.txt'
		echo "$D/in/f00007.txt"			# again, by the same name
		echo "$D/in/link.txt"			# f00100.txt by another name
		echo "$D/in/f00200.txt.result.txt"	# an input ...
	} >"$D/list"
	# ... that is where f00200.txt's result would go with -r {name}.result.txt
	serve_refused 2 -T "$D/list" -r '{name}.result.txt'
	assert_regex "$stderr" "$D/in/f00007.txt and $D/in/f00007.txt are the same file \(one name\)"
	assert_regex "$stderr" "(f00100|link)\.txt and $D/in/(f00100|link)\.txt are the same file \(hard links to one file\)"
	assert_regex "$stderr" "the result of $D/in/f00200.txt, $D/in/f00200.txt.result.txt, would overwrite the input $D/in/f00200.txt.result.txt \(one name\)"
	# the name given twice also gives two results one path: the fourth
	assert_regex "$stderr" "the results of $D/in/f00007.txt and $D/in/f00007.txt would both be written to $D/in/f00007.txt.result.txt"
	assert_regex "$stderr" "4 clashes between inputs and results; nothing served"
}

@test "20,000 inputs: one removed and one replaced by a FIFO after start fail by name; the others are done" {
	many "$D/in"
	find "$D/in" -name '*.txt' >"$D/list"
	start_server_unix --no-sync --linger 0 -T "$D/list"
	rm "$D/in/f00003.txt"
	rm "$D/in/f00005.txt"
	mkfifo "$D/in/f00005.txt"
	# the two fail in the server, when handed out: jq-run runs no failing command
	run -0 timeout -k 5 600 jq-run -j4 "$SERVER" -- cat
	wait_server_exit
	[ "$status" -eq 1 ]
	grep -q "$N jobs: $((N - 2)) done, 2 failed" "$SERVER_LOG"
	grep -q "f00003.txt failed: input gone: No such file or directory" "$SERVER_LOG"
	grep -q "f00005.txt failed: input changed since start: now a FIFO" "$SERVER_LOG"
	assert_file_not_exist "$D/in/f00003.txt.result"
	assert_file_not_exist "$D/in/f00005.txt.result"
	[ "$(find "$D/in" -name '*.result' | wc -l)" -eq $((N - 2)) ]
}
