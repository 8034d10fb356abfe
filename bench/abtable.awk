# bench/abtable.awk: bench/ab.sh's table from its measurements: each figure's medians for A and B, B/A oriented, each pair's ratio, a verdict.
#
#   awk -v min=0.95 -f bench/abtable.awk FIGURES SAMPLES
#
# FIGURES: KEY, KIND, LABEL per line (tab-separated), in the order of the table; KIND "rate"
# (req/s: higher is better), "us" or "ms" (a time), "kb" (a memory size): lower is better.
# SAMPLES: KEY, SIDE (A or B), PAIR (1, 2, ...), VALUE per line; an empty or zero VALUE is a
# failed run. Prints a markdown row per figure, "| LABEL | A median | B median | B/A | each pair
# | verdict |", B/A (3 decimals; each pair's ratio 2) oriented so that above 1 is better for B (a rate B/A, anything else A/B);
# verdict "ok" from min on, else "LOW", "LOW (a run failed)", or "only in A" / "only in B" for a
# figure of one side only (a responder the other layout lacks: shown, not counted). Then
# "SUMMARY<TAB>bench A/B: N figures, N ≥ min, N below", with "(N more measured on one side
# only)" when there are such.
BEGIN { FS = "\t" }

# median of the blank-separated numbers of s (0 for none)
function median(s,   n, i, j, t, x) {
	n = split(s, x, " ")
	if (n == 0) return 0
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && x[j - 1] + 0 > x[j] + 0; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
	return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
}
function fmt(kind, x) {
	if (kind == "rate") return sprintf("%.0f req/s", x)
	if (kind == "us") return sprintf("%.3f ms", x / 1000)
	if (kind == "ms") return sprintf("%d ms", x)
	return sprintf("%.1f MB", x / 1024)
}
# above 1: better for B (a rate B/A, anything else A/B); -1 when a side has no value
function oriented(kind, a, b) {
	if (a <= 0 || b <= 0) return -1
	return kind == "rate" ? b / a : a / b
}

FILENAME == ARGV[1] { key[++nf] = $1; kind[$1] = $2; label[$1] = $3; next }
{
	runs[$1, $2] = runs[$1, $2] " " ($4 == "" ? 0 : $4)
	at[$1, $2, $3] = $4
	if ($3 > npairs) npairs = $3
	if ($4 + 0 <= 0) failed[$1] = 1
}
END {
	ok = 0; low = 0; one = 0
	for (f = 1; f <= nf; f++) {
		k = key[f]
		if (runs[k, "A"] == "" || runs[k, "B"] == "") {
			one++
			printf "| %s | %s | %s | - | - | only in %s |\n", label[k],
				runs[k, "A"] == "" ? "-" : fmt(kind[k], median(runs[k, "A"])),
				runs[k, "B"] == "" ? "-" : fmt(kind[k], median(runs[k, "B"])), runs[k, "A"] == "" ? "B" : "A"
			continue
		}
		a = median(runs[k, "A"]); b = median(runs[k, "B"])
		r = oriented(kind[k], a, b)
		pairs = ""
		for (p = 1; p <= npairs; p++) {
			if (!((k, "A", p) in at) || !((k, "B", p) in at)) continue
			q = oriented(kind[k], at[k, "A", p], at[k, "B", p])
			pairs = pairs (pairs == "" ? "" : " ") (q < 0 ? "n/a" : sprintf("%.2f", q))
		}
		if (r < 0 || k in failed) { verdict = "LOW (a run failed)"; low++ }
		else if (r >= min) { verdict = "ok"; ok++ }
		else { verdict = "LOW"; low++ }
		printf "| %s | %s | %s | %s | %s | %s |\n", label[k], fmt(kind[k], a), fmt(kind[k], b),
			r < 0 ? "n/a" : sprintf("%.3f", r), pairs, verdict
	}
	printf "SUMMARY\tbench A/B: %d figures, %d \342\211\245 %s, %d below%s\n", ok + low, ok, min, low,
		one ? sprintf(" (%d more measured on one side only)", one) : ""
}
