package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateText is the one rule for free-text fields (names, descriptions):
// valid UTF-8, at most maxChars characters, and no control character
// (C0 including NUL, tab and newline, DEL, C1). The error starts with field.
func ValidateText(field, s string, maxChars int) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%s: must be valid UTF-8", field)
	case utf8.RuneCountInString(s) > maxChars:
		return fmt.Errorf("%s: must be at most %d characters, got %d", field, maxChars, utf8.RuneCountInString(s))
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s: must not contain control characters", field)
	}
	return nil
}
