package stacktest

// forgeModule is mod_stacktest_forge, loaded on the VirtualHost with
// Options.Forge. TEST ONLY: it lets any logged-in client of the test server
// make the server send a stanza of the client's choosing, as if a buggy or
// compromised server module did, and returns the reply the server got:
//
//	<iq type='set' to='example.org'><forge xmlns='urn:x-stacktest:forge:0'>ESCAPED STANZA</forge></iq>
//	-> <iq type='result'><forge xmlns='urn:x-stacktest:forge:0'>ESCAPED REPLY (empty: none in 30 s)</forge></iq>
//
// An IQ get/set is sent with module:send_iq, so its from must be the host
// for the reply to come back; anything else is sent as it is and gets an
// empty answer.
const forgeModule = `-- mod_stacktest_forge: TEST ONLY (written by internal/stacktest into a temporary directory).
local st = require "util.stanza";
local xml = require "util.xml";
local new_id = require "util.id".short;
local xmlns_forge = "urn:x-stacktest:forge:0";

module:hook("iq-set/host/" .. xmlns_forge .. ":forge", function (event)
	local origin, stanza = event.origin, event.stanza;
	local text = stanza:get_child_text("forge", xmlns_forge) or "";
	local forged, err = xml.parse(text);
	if not forged then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "forge: " .. tostring(err)));
		return true;
	end
	local function answer(s)
		origin.send(st.reply(stanza):tag("forge", { xmlns = xmlns_forge }):text(s or ""));
	end
	if forged.name == "iq" and (forged.attr.type == "get" or forged.attr.type == "set") then
		forged.attr.id = forged.attr.id or new_id();
		module:send_iq(forged, nil, 30):next(function (ev)
			answer(tostring(ev.stanza));
		end, function (e)
			local s = e and e.context and e.context.stanza;
			answer(s and tostring(s) or "");
		end);
	else
		module:send(forged);
		answer("");
	end
	return true;
end);
`
