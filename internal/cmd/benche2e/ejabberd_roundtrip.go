package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
)

// roundTripN is how many round trips of each kind lookupRoundTrips times.
const roundTripN = 200

// lookupRoundTrips times, inside ej-ours's Erlang node and after the logins
// (so with nothing else running), one after another, roundTripN IQs from
// the server to the component and back through ejabberd's router, the
// component listener and the XEP-0114 link, the way mod_saslcert sends its
// lookups (ejabberd_router:route_iq): an XEP-0199 ping, which the component
// answers on its stream goroutine without any work, and the module's lookup
// by fingerprint of der (a stored certificate: a store read and a
// certificate parse in the component). It returns both as p10/p50/p90.
//
// These are the floor under the module's cost per login: a login waits for
// what of its lookup's round trip the client's own steps (the stream
// features, <auth/>) do not cover, and during the benchmark the same round
// trip competes for the CPUs with the client and ejabberd's c2s process.
func lookupRoundTrips(srv *ejabberdtest.Server, domain, component string, der []byte) (string, error) {
	var b strings.Builder
	for i, c := range der {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(c)))
	}
	// The fun runs on the server's node (the interpreter is there too);
	// #iq{} is written as its tuple: {iq, Id, Type, Lang, From, To, SubEls, Meta}.
	code := fmt.Sprintf(`F = fun() ->
	From = jid:make(<<%q>>), To = jid:make(<<%q>>),
	Time = fun(Payload) ->
		lists:map(fun(_) ->
			Ref = make_ref(),
			T0 = erlang:monotonic_time(microsecond),
			ejabberd_router:route_iq({iq, <<>>, get, <<>>, From, To, [Payload], #{}}, Ref, self(), 5000),
			receive
				{iq_reply, {iq, _, result, _, _, _, _, _}, Ref} -> erlang:monotonic_time(microsecond) - T0;
				{iq_reply, _, Ref} -> -1
			after 6000 -> -1
			end
		end, lists:seq(1, %d))
	end,
	DER = <<%s>>,
	{Time({xmlel, <<"ping">>, [{<<"xmlns">>, <<"urn:xmpp:ping">>}], []}),
	 Time(mod_saslcert_proto:lookup_by_fingerprint(mod_saslcert_proto:fingerprint(DER), <<>>))}
end,
rpc:call(Node, erlang, apply, [F, []])`, domain, component, roundTripN, b.String())
	out, err := srv.Eval(code)
	if err != nil {
		return "", err
	}
	ping, lookup, err := parseRoundTrips(out)
	if err != nil {
		return "", err
	}
	return "ping " + percentiles(ping) + "; lookup " + percentiles(lookup), nil
}

var roundTripsRe = regexp.MustCompile(`^\{\[([-0-9,\s]*)\],\s*\[([-0-9,\s]*)\]\}$`)

// parseRoundTrips reads the Eval output {[ping µs…], [lookup µs…]}; a
// round trip that failed is -1 there and an error here.
func parseRoundTrips(out string) (ping, lookup []time.Duration, err error) {
	m := roundTripsRe.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return nil, nil, fmt.Errorf("unexpected answer from the server's node: %.300s", out)
	}
	lists := [2][]time.Duration{}
	for i, s := range m[1:] {
		for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
			us, err := strconv.Atoi(f)
			if err != nil || us < 0 {
				return nil, nil, fmt.Errorf("a round trip failed (not answered with a result in 5 s)")
			}
			lists[i] = append(lists[i], time.Duration(us)*time.Microsecond)
		}
		if len(lists[i]) != roundTripN {
			return nil, nil, fmt.Errorf("%d round trips timed, want %d", len(lists[i]), roundTripN)
		}
	}
	return lists[0], lists[1], nil
}

// percentiles is "p10/p50/p90 A/B/C µs" of lat.
func percentiles(lat []time.Duration) string {
	s := sortedCopy(lat)
	us := func(q float64) int64 { return quantile(s, q).Microseconds() }
	return fmt.Sprintf("p10/p50/p90 %d/%d/%d µs", us(0.1), us(0.5), us(0.9))
}

func sortedCopy(lat []time.Duration) []time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s
}
