package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tbv1 "github.com/tokenbroker/tokenbroker/gen/tokenbroker/v1"
)

// maxAuditPage is the API's largest page.
const maxAuditPage = 1000

func (a *app) auditCommand() *cobra.Command {
	return group("audit", "The audit log: list past events, follow new ones",
		`  tokenbroker audit list --limit 20
  tokenbroker audit follow`,
		a.auditListCommand(), a.auditFollowCommand())
}

var auditHeader = []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"}

func auditRow(ev *tbv1.AuditEvent) []string {
	actor := ev.GetActorId()
	if ev.GetActorKind() != "" {
		actor = ev.GetActorKind() + ":" + actor
	}
	target := ev.GetTargetId()
	if ev.GetTargetKind() != "" {
		target = ev.GetTargetKind() + ":" + target
	}
	return []string{fmt.Sprint(ev.GetSeq()), ts(ev.GetTime()), orDash(actor), ev.GetAction(), orDash(target), ev.GetOutcome(), orDash(ev.GetDetail())}
}

func parseTimeFlag(name, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usagef("--%s %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", name, v)
	}
	return timestamppb.New(t), nil
}

func (a *app) auditListCommand() *cobra.Command {
	var (
		from, to, pageToken string
		limit               int
	)
	c := &cobra.Command{
		Use:   "list [--from TIME] [--to TIME] [--limit N]",
		Short: "List audit events, oldest first",
		Long: `List audit events, oldest first, optionally within [--from, --to). At
most --limit events are printed; with -o json the answer's nextPageToken
continues the listing (--page-token).`,
		Example: `  tokenbroker audit list --limit 20
  tokenbroker audit list --from 2026-11-01T00:00:00Z -o json | jq -c '.events[] | select(.outcome != "success")'`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if limit < 1 {
				return usagef("--limit must be at least 1")
			}
			fromTS, err := parseTimeFlag("from", from)
			if err != nil {
				return err
			}
			toTS, err := parseTimeFlag("to", to)
			if err != nil {
				return err
			}
			return a.unary(ctx, func(ctx context.Context, c clients) error {
				all := &tbv1.ListAuditEventsResponse{NextPageToken: pageToken}
				for {
					resp, err := c.audit.ListAuditEvents(ctx, &tbv1.ListAuditEventsRequest{
						From: fromTS, To: toTS, PageToken: all.NextPageToken,
						PageSize: int32(min(limit-len(all.Events), maxAuditPage)),
					})
					if err != nil {
						return err
					}
					all.Events = append(all.Events, resp.GetEvents()...)
					all.NextPageToken = resp.GetNextPageToken()
					if all.NextPageToken == "" || len(all.Events) >= limit || len(resp.GetEvents()) == 0 {
						break
					}
				}
				if a.json() {
					return a.printProto(all)
				}
				rows := make([][]string, 0, len(all.Events))
				for _, ev := range all.Events {
					rows = append(rows, auditRow(ev))
				}
				return a.table(auditHeader, rows)
			})
		}),
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "only events at or after this RFC 3339 time")
	f.StringVar(&to, "to", "", "only events before this RFC 3339 time")
	f.IntVarP(&limit, "limit", "n", 100, "print at most this many events")
	f.StringVar(&pageToken, "page-token", "", "continue from a previous listing's nextPageToken")
	return c
}

func (a *app) auditFollowCommand() *cobra.Command {
	var (
		afterSeq uint64
		limit    int
	)
	c := &cobra.Command{
		Use:   "follow [--after-seq N] [--limit N]",
		Short: "Print audit events as they are recorded, until interrupted",
		Long: `Print audit events as they are recorded: one line each (with -o json,
one FollowAuditEventsResponse per line). Starts after --after-seq (0: only
new events). Runs until interrupted (exit 0), --limit events were printed,
or the broker ends the stream.`,
		Example: `  tokenbroker audit follow
  tokenbroker audit follow --after-seq 1200 -o json | jq -c 'select(.event.outcome == "denied")'`,
		Args: cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, _ []string) error {
			if limit < 0 {
				return usagef("--limit must not be negative")
			}
			c, err := a.clients()
			if err != nil {
				return err
			}
			sctx, err := a.stream(ctx)
			if err != nil {
				return err
			}
			sctx, cancel := context.WithCancel(sctx)
			defer cancel()
			st, err := c.audit.FollowAuditEvents(sctx, &tbv1.FollowAuditEventsRequest{AfterSeq: afterSeq})
			if err != nil {
				return err
			}
			if !a.json() {
				fmt.Fprintln(a.out, strings.Join(auditHeader, "  "))
			}
			for n := 0; limit == 0 || n < limit; n++ {
				resp, err := st.Recv()
				switch {
				case errors.Is(err, io.EOF):
					return nil
				case err != nil && (ctx.Err() != nil || status.Code(err) == codes.Canceled):
					return nil // interrupted: a normal end of following
				case err != nil:
					return err
				}
				if a.json() {
					if err := a.printProto(resp); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(a.out, strings.Join(auditRow(resp.GetEvent()), "  "))
			}
			return nil
		}),
	}
	c.Flags().Uint64Var(&afterSeq, "after-seq", 0, "start after this sequence number (0: only new events)")
	c.Flags().IntVarP(&limit, "limit", "n", 0, "stop after this many events (0: no limit)")
	return c
}

func (a *app) checkCommand() *cobra.Command {
	var action, resource string
	c := &cobra.Command{
		Use:   "check [CREDENTIAL] --action ACTION --resource DRN",
		Short: "Ask whether a credential may do an action on a resource",
		Long: `Ask the broker whether a credential (an application token, an
authorization token, or a Pulsar JWT) is valid and may do ACTION on the
resource DRN. Without CREDENTIAL, the --token credential is checked;
with "-", the credential is read from the first line of stdin (an argument
is visible to other users of the machine in the process list).

Exit code: 0 when allowed, 1 when not (the answer says why:
CREDENTIAL_INVALID or PERMISSION_DENIED) or when the call fails.`,
		Example: `  tokenbroker check "$APP_TOKEN" --action db-table-select --resource "drn:astra:org:$ORG:db:$DB:keyspace:ks:table:t"
  tokenbroker check --action org-token-read --resource "drn:astra:org:$ORG" && echo allowed`,
		Args: cobra.MaximumNArgs(1),
		RunE: a.run(func(ctx context.Context, args []string) error {
			if action == "" || resource == "" {
				return usagef("--action and --resource are required")
			}
			cred := ""
			switch {
			case len(args) == 1 && args[0] == "-":
				// From stdin: an argument is visible in the process list.
				line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the credential from stdin: %w", err)
				}
				if cred = strings.TrimSpace(line); cred == "" {
					return usagef("stdin held no credential")
				}
			case len(args) == 1:
				cred = args[0]
			default:
				var err error
				if cred, err = a.bearer(); err != nil {
					return usagef("no credential to check: give it as the argument, or use --token or TOKENBROKER_TOKEN")
				}
			}
			c, err := a.clients()
			if err != nil {
				return err
			}
			// Check is public: the credential travels in the request.
			cctx, cancel := a.deadline(ctx)
			defer cancel()
			resp, err := c.auth.Check(cctx, &tbv1.CheckRequest{Credential: cred, Action: action, Resource: resource})
			if err != nil {
				return err
			}
			if a.json() {
				if err := a.printProto(resp); err != nil {
					return err
				}
			} else {
				answer := "allowed"
				if !resp.GetAllowed() {
					answer = "denied: " + resp.GetReason()
				}
				p := resp.GetPrincipal()
				kv := []string{"answer", answer}
				if p != nil {
					kv = append(kv, "principal", p.GetKind()+":"+p.GetId(), "credentialType", p.GetCredentialType(), "roles", strings.Join(p.GetRoles(), "\n"))
				}
				if err := a.fields(kv...); err != nil {
					return err
				}
			}
			if !resp.GetAllowed() {
				return errDenied
			}
			return nil
		}),
	}
	c.Flags().StringVar(&action, "action", "", "permission name, e.g. db-table-select")
	c.Flags().StringVar(&resource, "resource", "", "the resource's DRN, e.g. drn:astra:org:<orgId>:db:<dbId>")
	return c
}

// errDenied is check's failure when the answer is "not allowed": exit 1,
// with the answer already printed.
var errDenied = errors.New("not allowed")
