package kvrecords

// chunked splits a map of use times into maps of at most n entries: use
// times are written in several transactions when they do not fit in one
// (they are a best-effort record of last use, never a security decision).
func chunked[V any](m map[string]V, n int) []map[string]V {
	if len(m) <= n {
		return []map[string]V{m}
	}
	var out []map[string]V
	cur := make(map[string]V, n)
	for k, v := range m {
		cur[k] = v
		if len(cur) == n {
			out = append(out, cur)
			cur = make(map[string]V, n)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
