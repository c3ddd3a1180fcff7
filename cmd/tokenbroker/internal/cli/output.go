package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOptions are the REST gateway's: every field present (null or zero
// when unset), the same JSON names.
var jsonOptions = protojson.MarshalOptions{EmitUnpopulated: true}

// printProto writes m as one line of compact JSON. protojson varies its
// whitespace between builds on purpose; compacting makes the output
// byte-stable for scripts.
func (a *app) printProto(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return a.printRawJSON(b)
}

// printJSON writes v (a plain Go value) as one line of compact JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.printRawJSON(b)
}

func (a *app) printRawJSON(b []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := a.out.Write(buf.Bytes())
	return err
}

// table writes rows under a header, aligned.
func (a *app) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes "name  value" lines, aligned; a value with several lines
// continues under itself.
func (a *app) fields(kv ...string) error {
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		lines := strings.Split(kv[i+1], "\n")
		fmt.Fprintf(tw, "%s\t%s\n", kv[i], lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t%s\n", l)
		}
	}
	return tw.Flush()
}

// warnSecret tells, on stderr (so a pipe of stdout still shows it), that
// what follows on stdout is shown once.
func (a *app) warnSecret(what string) {
	fmt.Fprintf(a.errw, "tokenbroker: WARNING: %s: shown only this once, and it cannot be retrieved later. Store it now, in a secret store.\n", what)
}

// note writes an informational line to stderr.
func (a *app) note(format string, args ...any) {
	fmt.Fprintf(a.errw, format+"\n", args...)
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil || (t.Seconds == 0 && t.Nanos == 0) {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNever(s string) string {
	if s == "" {
		return "never"
	}
	return s
}
