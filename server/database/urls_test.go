package database

import "testing"

func TestParseURLTemplate(t *testing.T) {
	for _, bad := range []string{
		"https://apps.example.internal",          // no {id}
		"ftp://{id}.example.internal",            // scheme
		"https:///{id}",                          // no host
		"https://{id}.example.internal/?q=1",     // query
		"https://{id}.example.internal/#frag",    // fragment
		"https://{id}-{region}.example internal", // not a URL
		"{id}",                                   // relative
	} {
		if _, err := ParseURLTemplate(bad); err == nil {
			t.Errorf("ParseURLTemplate(%q) accepted", bad)
		}
	}
	tmpl, err := ParseURLTemplate("https://{id}-{region}.apps.example.internal/")
	if err != nil {
		t.Fatal(err)
	}
	u, ok := tmpl.urls("db1", "us-east1")
	want := regionURLs{
		cqlsh:        "https://db1-us-east1.apps.example.internal/cqlsh",
		graphql:      "https://db1-us-east1.apps.example.internal/api/graphql",
		dataEndpoint: "https://db1-us-east1.apps.example.internal/api/rest",
	}
	if !ok || u != want {
		t.Errorf("urls = %+v, %v; want %+v", u, ok, want)
	}
	if _, ok := tmpl.urls("db1", ""); ok {
		t.Error("a database without a region got URLs from a {region} template")
	}
	none, _ := ParseURLTemplate("")
	if _, ok := none.urls("db1", "us-east1"); ok {
		t.Error("no template, but URLs")
	}
	noRegion, _ := ParseURLTemplate("http://data.internal/{id}")
	if u, ok := noRegion.urls("db1", ""); !ok || u.dataEndpoint != "http://data.internal/db1/api/rest" {
		t.Errorf("template without {region}: %+v, %v", u, ok)
	}
}
