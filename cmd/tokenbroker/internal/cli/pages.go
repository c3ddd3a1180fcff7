package cli

import "fmt"

// maxPages stops a list that never ends (a server bug) from looping forever.
const maxPages = 1 << 20

// allPages calls page with "" and then with each next page token it
// returns, until one returns "": every list RPC answers one bounded page
// (docs/api.md), and the CLI shows the whole list.
func allPages(page func(token string) (next string, err error)) error {
	token := ""
	for i := 0; i < maxPages; i++ {
		next, err := page(token)
		if err != nil || next == "" {
			return err
		}
		token = next
	}
	return fmt.Errorf("list did not end after %d pages", maxPages)
}
