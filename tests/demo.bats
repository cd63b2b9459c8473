#!/usr/bin/env bats
# share/demo, the README's first command: it runs end to end and keeps what it made where it says.

setup() {
	load test_helper/common
	jq_setup
}

@test "share/demo encodes its WAV files and names the directory that keeps the results" {
	command -v sox lame
	run -0 env JQ_DEMO_DIR="$D/demo" sh "$BATS_TEST_DIRNAME/../share/demo"
	assert_line "demo: ok"
	assert_line --partial "everything is in $D/demo"
	local f n=0
	for f in "$D"/demo/in/*.wav; do
		[[ -s $f.result ]]
		n=$((n + 1))
	done
	assert_equal "$n" 8
	# a directory that is not empty is refused rather than mixed into
	run -1 env JQ_DEMO_DIR="$D/demo" sh "$BATS_TEST_DIRNAME/../share/demo"
	assert_output --partial "is not empty"
}
