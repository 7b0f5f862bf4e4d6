-- imp2.lua: Wireshark/tshark dissector for the imp2 netlink protocol.
--
-- Usage:  tshark -X lua_script:tools/wireshark/imp2.lua -r trace.pcapng.zst -V
--         or copy into ~/.local/lib/wireshark/plugins/ for the GUI.
--
-- Fields: imp2.type, imp2.len, imp2.seq, imp2.pid, imp2.src, imp2.dest,
-- imp2.tstamp, imp2.ifindex, imp2.icmp_type, imp2.icmp_code, imp2.echo_id,
-- imp2.echo_seq, imp2.flags (imp2.flags.icmp), imp2.ip_len, imp2.reserved,
-- the queue extension (module 2.1: imp2.rmem_alloc, imp2.rcvbuf,
-- imp2.truesize, imp2.drop_rmem), imp2.extension (bytes past the fields
-- this script knows), imp2.payload,
-- imp2.stats.* (IMP2_STATS replies), imp2.ack.error and imp2.ack.type
-- (NLMSG_ERROR acknowledgements of imp2 requests).
-- Columns: Protocol "IMP2", Info one summary per message, and for events
-- Source and Destination the event's src and dest (the first event of the
-- frame), as IPv4 addresses, so that ip.addr-style sorting and the
-- Conversations view work on them.
-- Message types: IMP2_U_PID 0, IMP2_K_MSG 1, IMP2_CLOSE 2 (the original
-- protocol), IMP2_GET_STATS 0x10, IMP2_STATS 0x11.
--
-- The wire format is defined in kmod/imp2_uapi.h.  src, dest, icmp_id and
-- icmp_seq are in network byte order; the module's own fields are in the
-- recording host's byte order, guessed from nlmsg_len like Wireshark's
-- netlink dissector does.
--
-- How it hooks in: the dissector is registered in the "netlink.protocol"
-- table for family 31, but Wireshark (checked on 4.0) calls that table only
-- for message types >= NLMSG_MIN_TYPE (0x10): it reaches IMP2_GET_STATS and
-- IMP2_STATS, never the original types 0-2.  So the script also wraps the
-- LINKTYPE_NETLINK dissector: it runs Wireshark's own netlink dissector first
-- (the netlink.* fields stay) and then adds the imp2 tree for frames of the
-- imp2 family that the table did not reach.  (A frame batching types below
-- and above 0x10 would show only the latter; the module sends one message
-- per skb.)
--
-- Family 2 (NETLINK_USERSOCK): a user-space producer (imp2.Server,
-- imp2-replay -to netlink) speaks imp2 on family 2, but so may any other
-- program, so family 2 is not claimed whole (not in the netlink.protocol
-- table: that would take every type >= 0x10 message of every program).
-- Instead the wrapper tests each family 2 frame heuristically and decodes
-- it only if every message in it has the shape of an imp2 message:
-- IMP2_U_PID, IMP2_CLOSE, IMP2_GET_STATS a bare 16-byte header, IMP2_K_MSG
-- 24 bytes (legacy) or at least 48, IMP2_STATS at least 96, an
-- acknowledgement (NLMSG_ERROR, 36 bytes) one whose echoed header is a bare
-- imp2 request, and the lengths adding up to the frame.  Other programs'
-- frames of those exact shapes would be taken for imp2; the "Find imp2 on
-- NETLINK_USERSOCK" preference (Protocols > IMP2, on by default) turns the
-- heuristic off.  The same test decides nothing on family 31, which is
-- imp2's own.

local imp2 = Proto("imp2", "imp2 netlink protocol")

imp2.prefs.family = Pref.uint("Netlink family", 31,
	"Netlink unit (family) of the imp2 module (NL_IMP2, 31 unless loaded with another unit)")
imp2.prefs.usersock = Pref.bool("Find imp2 on NETLINK_USERSOCK", true,
	"Decode netlink family 2 frames whose every message has the shape of an imp2 message (user-space producers)")

local msg_types = {
	[0] = "IMP2_U_PID",
	[1] = "IMP2_K_MSG",
	[2] = "IMP2_CLOSE",
	[0x10] = "IMP2_GET_STATS",
	[0x11] = "IMP2_STATS",
}

local icmp_types = {
	[0] = "Echo reply", [3] = "Destination unreachable", [5] = "Redirect",
	[8] = "Echo request", [11] = "Time exceeded", [12] = "Parameter problem",
	[13] = "Timestamp", [14] = "Timestamp reply",
}

local F = {
	type      = ProtoField.uint16("imp2.type", "Message type", base.DEC, msg_types),
	len       = ProtoField.uint32("imp2.len", "Length", base.DEC),
	nlflags   = ProtoField.uint16("imp2.nlflags", "Netlink flags", base.HEX),
	seq       = ProtoField.uint32("imp2.seq", "Sequence", base.DEC),
	pid       = ProtoField.uint32("imp2.pid", "Port ID", base.DEC),
	src       = ProtoField.ipv4("imp2.src", "Source"),
	dest      = ProtoField.ipv4("imp2.dest", "Destination"),
	tstamp    = ProtoField.uint64("imp2.tstamp", "Unicast time (CLOCK_MONOTONIC, ns)", base.DEC),
	ifindex   = ProtoField.int32("imp2.ifindex", "Input interface index", base.DEC),
	icmp_type = ProtoField.uint8("imp2.icmp_type", "ICMP type", base.DEC, icmp_types),
	icmp_code = ProtoField.uint8("imp2.icmp_code", "ICMP code", base.DEC),
	echo_id   = ProtoField.uint16("imp2.echo_id", "ICMP echo identifier", base.DEC_HEX),
	echo_seq  = ProtoField.uint16("imp2.echo_seq", "ICMP echo sequence number", base.DEC),
	flags     = ProtoField.uint16("imp2.flags", "Event flags", base.HEX),
	flag_icmp = ProtoField.bool("imp2.flags.icmp", "ICMP fields valid", 16, nil, 0x0001),
	ip_len    = ProtoField.uint16("imp2.ip_len", "IPv4 total length", base.DEC),
	reserved  = ProtoField.uint16("imp2.reserved", "Reserved", base.HEX),
	rmem_alloc = ProtoField.uint32("imp2.rmem_alloc", "Receive queue bytes with this event (sk_rmem_alloc)", base.DEC),
	rcvbuf     = ProtoField.uint32("imp2.rcvbuf", "Receive buffer (sk_rcvbuf)", base.DEC),
	truesize   = ProtoField.uint32("imp2.truesize", "This event's skb truesize", base.DEC),
	drop_rmem  = ProtoField.uint32("imp2.drop_rmem", "sk_rmem_alloc at the drop that opened the gap before this event (0: no gap)", base.DEC),
	extension = ProtoField.bytes("imp2.extension", "Later extension"),
	payload   = ProtoField.bytes("imp2.payload", "Payload"),
	ack_error = ProtoField.int32("imp2.ack.error", "Acknowledgement error (0: success, else -errno)", base.DEC),
	ack_type  = ProtoField.uint16("imp2.ack.type", "Acknowledged message type", base.DEC, msg_types),

	st_events       = ProtoField.uint64("imp2.stats.events", "Events seen by the hook", base.DEC),
	st_unicast_ok   = ProtoField.uint64("imp2.stats.unicast_ok", "Unicasts queued", base.DEC),
	st_eagain       = ProtoField.uint64("imp2.stats.eagain", "EAGAIN (queue full)", base.DEC),
	st_econnrefused = ProtoField.uint64("imp2.stats.econnrefused", "ECONNREFUSED (socket gone)", base.DEC),
	st_enomem       = ProtoField.uint64("imp2.stats.enomem", "ENOMEM", base.DEC),
	st_other_err    = ProtoField.uint64("imp2.stats.other_err", "Other errors", base.DEC),
	st_consumers    = ProtoField.uint32("imp2.stats.consumers", "Consumers", base.DEC),
	st_self_reg     = ProtoField.uint32("imp2.stats.self_registered", "Asker registered", base.DEC),
	st_self_sent    = ProtoField.uint64("imp2.stats.self_sent", "Events queued to the asker", base.DEC),
	st_self_dropped = ProtoField.uint64("imp2.stats.self_dropped", "Events the asker missed", base.DEC),
	st_self_seq     = ProtoField.uint32("imp2.stats.self_last_seq", "Last sequence given to the asker", base.DEC),
}
imp2.fields = F

local ef_short = ProtoExpert.new("imp2.short", "imp2 message too short", expert.group.MALFORMED, expert.severity.ERROR)
imp2.experts = { ef_short }

-- add adds a host-order field (little- or big-endian as guessed).
local function add(tree, le, field, range)
	if le then
		return tree:add_le(field, range)
	end
	return tree:add(field, range)
end

-- The fields of the event extension past struct imp2_event (32 bytes),
-- in wire order: { offset in the payload, length, field, host order }.
-- The extension is decoded by its length (nlmsg_len): the fields that fit
-- are shown, bytes past the last known one as imp2.extension, so that a
-- module with fields this script does not know yet still decodes.
local event_ext = {
	-- the queue extension (module 2.1): the consumer socket's receive
	-- queue when the module queued this event
	{ 32, 4, F.rmem_alloc, true },
	{ 36, 4, F.rcvbuf, true },
	{ 40, 4, F.truesize, true },
	{ 44, 4, F.drop_rmem, true },
}

local function dissect_event(tvb, pinfo, tree, le, off, plen, first)
	if plen < 8 then
		tree:add_proto_expert_info(ef_short, "event payload shorter than struct packet_info (8 bytes)")
		return
	end
	tree:add(F.src, tvb(off, 4))
	tree:add(F.dest, tvb(off + 4, 4))
	if first then
		pinfo.src = tvb(off, 4):ipv4()
		pinfo.dst = tvb(off + 4, 4):ipv4()
	end
	local info = string.format(" %s → %s", tostring(tvb(off, 4):ipv4()), tostring(tvb(off + 4, 4):ipv4()))
	if plen < 32 then
		tree:append_text(" (legacy)")
		return info
	end
	add(tree, le, F.tstamp, tvb(off + 8, 8))
	add(tree, le, F.ifindex, tvb(off + 16, 4))
	tree:add(F.icmp_type, tvb(off + 20, 1))
	tree:add(F.icmp_code, tvb(off + 21, 1))
	tree:add(F.echo_id, tvb(off + 22, 2))
	tree:add(F.echo_seq, tvb(off + 24, 2))
	local ft = add(tree, le, F.flags, tvb(off + 26, 2))
	add(ft, le, F.flag_icmp, tvb(off + 26, 2))
	add(tree, le, F.ip_len, tvb(off + 28, 2))
	add(tree, le, F.reserved, tvb(off + 30, 2))
	local known = 32
	for _, x in ipairs(event_ext) do
		if x[1] + x[2] > plen then
			break
		end
		if x[4] then
			add(tree, le, x[3], tvb(off + x[1], x[2]))
		else
			tree:add(x[3], tvb(off + x[1], x[2]))
		end
		known = x[1] + x[2]
	end
	if plen > known then
		tree:add(F.extension, tvb(off + known, plen - known))
	end
	local t = tvb(off + 20, 1):uint()
	return info .. string.format(" %s id=%d seq=%d", icmp_types[t] or ("ICMP type " .. t),
		tvb(off + 22, 2):uint(), tvb(off + 24, 2):uint())
end

-- dissect_ack decodes an NLMSG_ERROR acknowledgement: the error and the
-- echoed request header.
local function dissect_ack(tvb, tree, le, off, plen)
	if plen < 20 then
		tree:add(F.payload, tvb(off, plen))
		return ""
	end
	add(tree, le, F.ack_error, tvb(off, 4))
	add(tree, le, F.ack_type, tvb(off + 8, 2))
	local errno = le and tvb(off, 4):le_int() or tvb(off, 4):int()
	local typ = le and tvb(off + 8, 2):le_uint() or tvb(off + 8, 2):uint()
	return string.format(" of %s, error %d", msg_types[typ] or ("type " .. typ), errno)
end

local function dissect_stats(tvb, tree, le, off, plen)
	if plen < 80 then
		tree:add_proto_expert_info(ef_short, "stats payload shorter than struct imp2_stats (80 bytes)")
		return
	end
	add(tree, le, F.st_events, tvb(off, 8))
	add(tree, le, F.st_unicast_ok, tvb(off + 8, 8))
	add(tree, le, F.st_eagain, tvb(off + 16, 8))
	add(tree, le, F.st_econnrefused, tvb(off + 24, 8))
	add(tree, le, F.st_enomem, tvb(off + 32, 8))
	add(tree, le, F.st_other_err, tvb(off + 40, 8))
	add(tree, le, F.st_consumers, tvb(off + 48, 4))
	add(tree, le, F.st_self_reg, tvb(off + 52, 4))
	add(tree, le, F.st_self_sent, tvb(off + 56, 8))
	add(tree, le, F.st_self_dropped, tvb(off + 64, 8))
	add(tree, le, F.st_self_seq, tvb(off + 72, 4))
	if plen > 80 then -- counters of a later module: by length, as events
		tree:add(F.extension, tvb(off + 80, plen - 80))
	end
end

-- host_order guesses the byte order of the module's fields: the one whose
-- nlmsg_len is closer to what is there.
local function host_order(tvb, off)
	local total = tvb:reported_length_remaining(off)
	local len_le, len_be = tvb(off, 4):le_uint(), tvb(off, 4):uint()
	return math.abs(len_le - total) <= math.abs(len_be - total)
end

-- dissect_messages walks the netlink messages in tvb from off and returns
-- the number of bytes consumed.
local function dissect_messages(tvb, pinfo, root, off)
	if tvb:reported_length_remaining(off) < 16 then
		return 0
	end
	local le = host_order(tvb, off)
	local infos = {}
	local start = off
	local first_event = true
	while tvb:reported_length_remaining(off) >= 16 do
		local mlen = le and tvb(off, 4):le_uint() or tvb(off, 4):uint()
		local avail = tvb:reported_length_remaining(off)
		local shown = math.min(math.max(mlen, 16), avail)
		local mtype = le and tvb(off + 4, 2):le_uint() or tvb(off + 4, 2):uint()
		local name = msg_types[mtype] or string.format("type %d", mtype)
		if mtype == 2 and mlen > 16 then
			name = "NLMSG_ERROR" -- IMP2_CLOSE is a bare header; this is an acknowledgement
		end
		local tree = root:add(imp2, tvb(off, shown))
		tree:append_text(", " .. name)
		add(tree, le, F.len, tvb(off, 4))
		add(tree, le, F.type, tvb(off + 4, 2))
		add(tree, le, F.nlflags, tvb(off + 6, 2))
		add(tree, le, F.seq, tvb(off + 8, 4))
		add(tree, le, F.pid, tvb(off + 12, 4))
		local seq = le and tvb(off + 8, 4):le_uint() or tvb(off + 8, 4):uint()
		local info = name
		if mlen < 16 or mlen > avail then
			tree:add_proto_expert_info(ef_short, string.format("nlmsg_len %d with %d bytes present", mlen, avail))
			table.insert(infos, info)
			off = off + avail
			break
		end
		local plen = mlen - 16
		if mtype == 1 then
			info = info .. " seq=" .. seq .. (dissect_event(tvb, pinfo, tree, le, off + 16, plen, first_event) or "")
			first_event = false
		elseif mtype == 0x11 then
			dissect_stats(tvb, tree, le, off + 16, plen)
		elseif mtype == 2 and plen > 0 then
			info = info .. dissect_ack(tvb, tree, le, off + 16, plen)
		elseif plen > 0 then
			tree:add(F.payload, tvb(off + 16, plen))
		end
		table.insert(infos, info)
		off = off + bit.band(mlen + 3, bit.bnot(3))
	end
	pinfo.cols.protocol = "IMP2"
	pinfo.cols.info = table.concat(infos, "; ")
	return off - start
end

-- bare reports whether a message of type t and length n is one of imp2's
-- bare requests (IMP2_U_PID, IMP2_CLOSE, IMP2_GET_STATS).
local function bare(t, n)
	return n == 16 and (t == 0 or t == 2 or t == 0x10)
end

-- looks_like_imp2 is the family 2 heuristic (see the top of the file):
-- every message from off on has the shape of an imp2 message, and they
-- fill the frame.
local function looks_like_imp2(tvb, off)
	if tvb:reported_length_remaining(off) < 16 or tvb:len() ~= tvb:reported_len() then
		return false
	end
	local le = host_order(tvb, off)
	local u32 = function(o) return le and tvb(o, 4):le_uint() or tvb(o, 4):uint() end
	local u16 = function(o) return le and tvb(o, 2):le_uint() or tvb(o, 2):uint() end
	while tvb:reported_length_remaining(off) > 0 do
		local avail = tvb:reported_length_remaining(off)
		if avail < 16 then
			return false
		end
		local n, t = u32(off), u16(off + 4)
		if n < 16 or n > avail then
			return false
		end
		local ok = bare(t, n) or (t == 1 and (n == 24 or n >= 48)) or (t == 0x11 and n >= 96) or
			(t == 2 and n == 36 and bare(u16(off + 24), u32(off + 20)))
		if not ok then
			return false
		end
		off = off + bit.band(n + 3, bit.bnot(3))
	end
	return true
end

-- Entry 1: the netlink.protocol table (message types >= 0x10 only, on the
-- Wireshark versions checked). tvb is one message, header included.
local handled = false
function imp2.dissector(tvb, pinfo, tree)
	handled = true
	return dissect_messages(tvb, pinfo, tree, 0)
end
DissectorTable.get("netlink.protocol"):add(31, imp2)

-- Entry 2: wrap the LINKTYPE_NETLINK dissector for imp2 types 0-4, and
-- for family 2 frames that pass looks_like_imp2.
local netlink = Dissector.get("netlink")
local wrapper = Proto("imp2_netlink", "imp2 netlink wrapper")
function wrapper.dissector(tvb, pinfo, tree)
	handled = false
	-- IMP2_CLOSE is type 2, NLMSG_ERROR to Wireshark, which then expects an
	-- error code and throws "Malformed" on the bare header; catch that so
	-- the imp2 tree is still added.
	local ok, n = pcall(Dissector.call, netlink, tvb, pinfo, tree)
	if not ok then
		n = tvb:len()
	end
	if handled or tvb:len() < 32 then
		return n
	end
	local family = tvb(14, 2):uint()
	if family == imp2.prefs.family or (family == 2 and imp2.prefs.usersock and looks_like_imp2(tvb, 16)) then
		dissect_messages(tvb, pinfo, tree, 16)
	end
	return n
end
local encap = (wtap_encaps and wtap_encaps.NETLINK) or (wtap and wtap.NETLINK) or 158
DissectorTable.get("wtap_encap"):add(encap, wrapper)

-- A family preference other than 31 also needs the table entry.
function imp2.prefs_changed()
	if imp2.prefs.family ~= 31 then
		DissectorTable.get("netlink.protocol"):add(imp2.prefs.family, imp2)
	end
end
