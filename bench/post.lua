-- post.lua: wrk script POSTing the JSON body of the file $BENCH_BODY.
-- With $BENCH_BODY2 set too, requests alternate between the two bodies (per wrk thread:
-- BODY, BODY2, BODY, ...), e.g. the two rounds of a tool loop sent straight to the upstream.
-- With $BENCH_AUTH set, every request carries it as its Authorization header ("Bearer KEY").
local function slurp(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

local a = slurp(assert(os.getenv("BENCH_BODY"), "BENCH_BODY unset"))
local b2 = os.getenv("BENCH_BODY2")
local b = b2 and b2 ~= "" and slurp(b2) or nil
local headers = { ["Content-Type"] = "application/json" }
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
	headers["Authorization"] = auth
	wrk.headers["Authorization"] = auth
end
local n = 0

wrk.method = "POST"
wrk.body = a
wrk.headers["Content-Type"] = "application/json"

if b then
	request = function()
		n = n + 1
		return wrk.format("POST", nil, headers, (n % 2 == 1) and a or b)
	end
end
