package database

import (
	"fmt"
	"net/url"
	"strings"
)

// URLTemplate builds a database region's data API base URL from a template
// with the placeholders {id} (the database ID) and {region}, such as
// "https://{id}-{region}.apps.example.internal" (Astra's own scheme). The
// broker does not run databases; the template says where the operator's
// data API for a database lives, so clients that read the URL fields of a
// database object find it.
type URLTemplate struct {
	tmpl string // "" = no template: URL fields are absent
}

// ParseURLTemplate checks a template: "" (no URLs), or an http(s) URL
// containing {id}, with no query or fragment.
func ParseURLTemplate(tmpl string) (URLTemplate, error) {
	if tmpl == "" {
		return URLTemplate{}, nil
	}
	if !strings.Contains(tmpl, "{id}") {
		return URLTemplate{}, fmt.Errorf("data API URL template %q: must contain {id}", tmpl)
	}
	sample := strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000000", "{region}", "region").Replace(tmpl)
	u, err := url.Parse(sample)
	switch {
	case err != nil:
		return URLTemplate{}, fmt.Errorf("data API URL template %q: %w", tmpl, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return URLTemplate{}, fmt.Errorf("data API URL template %q: must be an http or https URL with a host", tmpl)
	case u.RawQuery != "" || u.Fragment != "" || strings.Contains(tmpl, "?") || strings.Contains(tmpl, "#"):
		return URLTemplate{}, fmt.Errorf("data API URL template %q: must have no query or fragment", tmpl)
	}
	return URLTemplate{tmpl: strings.TrimRight(tmpl, "/")}, nil
}

// regionURLs are a region's URLs as Astra names them.
type regionURLs struct {
	cqlsh, graphql, dataEndpoint string
}

// urls returns the URLs of database id in region, or ok false when no
// template is set or the database has no region (a template with {region}
// would give a broken host).
func (t URLTemplate) urls(id, region string) (regionURLs, bool) {
	if t.tmpl == "" || (region == "" && strings.Contains(t.tmpl, "{region}")) {
		return regionURLs{}, false
	}
	base := strings.NewReplacer("{id}", id, "{region}", region).Replace(t.tmpl)
	// The paths Astra serves under a region's base URL.
	return regionURLs{cqlsh: base + "/cqlsh", graphql: base + "/api/graphql", dataEndpoint: base + "/api/rest"}, true
}
