#!/bin/sh
# share/examples/pipeline.sh: a pipeline of three stages, split, process and join, as jq jobs
# whose order is only their dependencies (jq-put --add --after), run by any number of workers.
#
#   pipeline.sh submit SERVER INPUT [PARTS]   add the jobs, wait for the join, print its result
#   pipeline.sh work NAME FILE                what a worker runs for each job:
#       jq-run SERVER -- pipeline.sh work '<name>' '<in>'
#
# submit adds, in one go:
#
#   split-TAG           (TAG is PARTS-TIME-PID) INPUT itself; its result is INPUT's lines, each prefixed with the
#                       number (1 to PARTS, default 4) of the part it goes to, in order
#   part-TAG-K          K, for K = 1 ... PARTS, each --after split-TAG: it reads split's result
#                       (jq-put --wait) and makes its part upper case (the "process" stage)
#   join-TAG            the names of the parts, --after every part-TAG-K: it reads their
#                       results and puts them together, in order
#
# and waits for join-TAG, whose result is INPUT in upper case.  The parts run side by side on
# as many workers as there are; nothing runs before what it needs is done, and a failed stage
# fails the later ones (status "dependency") instead of leaving them waiting for ever.  A stage
# reads an earlier stage's result with jq-put --wait "$JQ_SERVER" ID, which jq-run sets for the
# command, so the workers need not share a file system with the server.
#
# (run by tests/deps.bats)

set -eu

usage() {
	echo "usage: pipeline.sh submit SERVER INPUT [PARTS]" >&2
	echo "       pipeline.sh work NAME FILE" >&2
	exit 2
}

[ $# -ge 1 ] || usage
mode=$1
shift
case $mode in
submit)
	[ $# -ge 2 ] && [ $# -le 3 ] || usage
	server=$1 input=$2 parts=${3:-4}
	tag=$parts-$(date +%s)-$$	# the number of parts first: split reads it
	split=$(jq-put --add "$server" --name "split-$tag" <"$input")
	ids='' names=''
	k=1
	while [ "$k" -le "$parts" ]; do
		id=$(echo "$k" | jq-put --add --after "$split" "$server" --name "part-$tag-$k")
		ids=${ids:+$ids,}$id
		names="$names part-$tag-$k"
		k=$((k + 1))
	done
	join=$(echo "$parts$names" | jq-put --add --after "$ids" "$server" --name "join-$tag")
	exec jq-put --wait "$server" "$join"
	;;
work)
	[ $# -eq 2 ] || usage
	name=$1 file=$2
	case $name in
	split-*)	# number the lines by part: part k gets the k-th slice, in order
		parts=${name#split-}
		parts=${parts%%-*}
		n=$(wc -l <"$file")
		awk -v n="$n" -v p="$parts" '{ print int((NR - 1) * p / (n ? n : 1)) + 1 "\t" $0 }' "$file"
		;;
	part-*)		# the process stage: this part's lines, upper case
		k=$(cat "$file")
		tag=${name#part-}
		tag=${tag%-*}
		jq-put --wait "$JQ_SERVER" --name "split-$tag" |
			awk -F '\t' -v k="$k" '$1 == k { sub(/^[^\t]*\t/, ""); print }' |
			tr '[:lower:]' '[:upper:]'
		;;
	join-*)		# the parts' results, in order
		read -r _ names <"$file"
		for part in $names; do
			jq-put --wait "$JQ_SERVER" --name "$part"
		done
		;;
	*)
		echo "pipeline.sh: $name: not a job of this pipeline" >&2
		exit 1
		;;
	esac
	;;
*)
	usage
	;;
esac
