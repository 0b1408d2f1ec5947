// Package spelling tells how far apart two names are, for the suggestions
// in the collector's errors: a misspelt flag, environment variable, plugins
// key or connections key is refused with the name it is closest to.
package spelling

// Distance is the Levenshtein distance between a and b, in bytes: the
// fewest insertions, deletions and substitutions that make a into b.
func Distance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
