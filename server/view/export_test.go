package view

// CachedTokens is the number of application-token credentials v caches.
func CachedTokens(v *View) int {
	v.tokens.mu.Lock()
	defer v.tokens.mu.Unlock()
	return v.tokens.n
}
