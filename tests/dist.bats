#!/usr/bin/env bats
# The release: VERSION in the Makefile is the version every tool prints, and make dist makes
# jq-VERSION.tar.gz of the tracked files, which builds and passes make check from a clean
# directory.  That check is kept small, it runs inside this one: the build with -Werror, the
# man page lint, shellcheck, the unit tests and TESTS=cli (a full make check there would run
# every test twice).

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
	TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	VERSION=$(make -s -C "$TOP" version)
}

@test "make version prints VERSION, and every tool's --version prints the same" {
	[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]
	grep -q "^VERSION = $VERSION\$" "$TOP/Makefile"
	local t
	for t in jq-serve jq-take jq-put jq-stat jq-run; do
		run -0 "$t" --version
		assert_output "$t (jq) $VERSION"
	done
}

@test "make dist: jq-VERSION.tar.gz of every tracked file builds and passes make check in a clean directory" {
	git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1 || skip "not a git work tree: make dist needs one"
	run -0 make -s -C "$TOP" dist DISTDIR="$D"
	local tarball=$D/jq-$VERSION.tar.gz
	assert_file_exist "$tarball"
	# every tracked file, under jq-VERSION/, and nothing more
	diff <(git -C "$TOP" ls-files | sort) \
		<(tar tzf "$tarball" | grep -v '/$' | sed "s,^jq-$VERSION/,," | sort)
	[[ -z $(tar tzf "$tarball" | grep -v "^jq-$VERSION/") ]]

	mkdir "$D/x" "$D/home"
	tar xzf "$tarball" -C "$D/x"
	cd "$D/x/jq-$VERSION"
	# a clean environment: none of this run's variables (BUILDDIR, the token, the state
	# directory), and neither this tree's build nor bats' own libexec (whose bats is not the
	# command) on the PATH
	local dir dirs path=''
	IFS=: read -r -a dirs <<<"$PATH"
	for dir in "${dirs[@]}"; do
		[[ $dir == "$BUILDDIR" || $dir == */bats-core* ]] || path=${path:+$path:}$dir
	done
	run env -i PATH="$path" HOME="$D/home" LC_ALL=C.UTF-8 ${BATS_LIB_PATH:+BATS_LIB_PATH="$BATS_LIB_PATH"} \
		make -j2 WERROR=1 check TESTS=cli
	cd - >/dev/null
	assert_success
	assert_line --regexp '^PASS  unit .*test_proto'
	assert_line --regexp '^PASS  bats: [0-9]+ passed, 0 failed'
	assert_line --regexp '^[0-9]+ passed, 0 failed$'
	# what it built says the same version
	run -0 "$D/x/jq-$VERSION/build/jq-serve" --version
	assert_output "jq-serve (jq) $VERSION"
	# an unpacked tarball is no git tree: make dist says so
	run -2 make -s -C "$D/x/jq-$VERSION" dist DISTDIR="$D"
	assert_output --partial "make dist: not a git work tree"
}
