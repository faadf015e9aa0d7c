-- The anonymous visitors of bench/load.py, for wrk: `wrk -tN -cN -s bench/load_visitors.lua URL`.
--
-- One connection per thread, so a thread's request() and response() strictly alternate and a
-- request's latency is the time between them (wrk itself keeps one histogram for all requests;
-- the benchmark reports each page on its own). Each thread keeps its samples in flat arrays of
-- numbers, the only values wrk copies reliably between threads, and done() writes them to
-- $KARYA_LOAD_OUT, one line per request: page number, cache state, status, microseconds.
--
-- Environment: KARYA_LOAD_LUA_PLAN (a Lua file returning what exists: provinces, products...),
-- KARYA_LOAD_WARMUP and KARYA_LOAD_SECONDS (requests started in between are kept), and
-- KARYA_LOAD_PATH: when set, every request asks for that path alone (the listing against hello).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } karya_timespec;
int clock_gettime(int clock, karya_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("karya_timespec")
local function microseconds()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

-- As bench/load_users.py did: most product views go to a few products, one visitor in eight
-- reads English.
local POPULAR_SHARE = 0.8
local ENGLISH_EVERY = 8
local CACHE_STATE = { hit = 1, miss = 2 } -- the X-Page-Cache header; 0 when absent

local plan
local function pick(list) return list[math.random(#list)] end
local function escape(text)
  return (text:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

-- { weight, name (as the report shows it), path }
local PAGES = {
  { 1, "/", function() return "/" end },
  { 4, "/products", function() return "/products" end },
  { 2, "/products?page=N", function()
    return "/products?page=" .. math.random(2, plan.listing_pages)
  end },
  { 2, "/products?province=P[&in_stock=1]", function()
    local path = "/products?province=" .. escape(pick(plan.provinces))
    if math.random() < 0.5 then path = path .. "&in_stock=1" end
    return path
  end },
  { 1, "/products?category=C", function()
    return "/products?category=" .. escape(pick(plan.categories))
  end },
  { 1, "/products?facility=F", function()
    return "/products?facility=" .. escape(pick(plan.facilities))
  end },
  { 1, "/products?in_stock=1", function() return "/products?in_stock=1" end },
  { 2, "/products?q=besek", function() return "/products?q=besek" end },
  { 2, "/products?q=other", function() return "/products?q=" .. escape(pick(plan.words)) end },
  { 6, "/products/<slug>", function()
    if math.random() < POPULAR_SHARE then return "/products/" .. pick(plan.popular_products) end
    return "/products/" .. pick(plan.products)
  end },
}
local total_weight = 0
for _, page in ipairs(PAGES) do total_weight = total_weight + page[1] end

local threads = {}
function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

-- Per thread: the samples, and what the request in flight is.
latencies, pages, statuses = {}, {}, {}
local only_path, language, session
local started, window_start, window_end, current, began

function init(args)
  only_path = os.getenv("KARYA_LOAD_PATH")
  if not only_path then plan = dofile(os.getenv("KARYA_LOAD_LUA_PLAN")) end
  math.randomseed(1000 + number)
  if number % ENGLISH_EVERY == 0 then language = "lang=en" end
  started = microseconds()
  window_start = started + tonumber(os.getenv("KARYA_LOAD_WARMUP")) * 1000000
  window_end = window_start + tonumber(os.getenv("KARYA_LOAD_SECONDS")) * 1000000
end

local function choose()
  local r = math.random() * total_weight
  for index, page in ipairs(PAGES) do
    if r < page[1] then return index end
    r = r - page[1]
  end
  return #PAGES
end

function request()
  local path
  if only_path then
    current, path = 0, only_path
  else
    current = choose()
    path = PAGES[current][3]()
  end
  local headers = {}
  -- The session cookie a product page gives (its form's CSRF token) goes back, as a browser's would.
  if language and session then
    headers["Cookie"] = language .. "; " .. session
  elseif language or session then
    headers["Cookie"] = language or session
  end
  began = microseconds()
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  local finished = microseconds()
  local cookie = headers["Set-Cookie"]
  if cookie then session = cookie:match("^(session=[^;]*)") or session end
  if began < window_start or began >= window_end then return end
  local n = #latencies + 1
  latencies[n] = finished - began
  pages[n] = current * 10 + (CACHE_STATE[headers["X-Page-Cache"]] or 0)
  statuses[n] = status
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("KARYA_LOAD_OUT"), "w"))
  for index, page in ipairs(PAGES) do out:write("page\t", index, "\t", page[2], "\n") end
  for _, thread in ipairs(threads) do
    local latency_of, page_of, status_of =
        thread:get("latencies"), thread:get("pages"), thread:get("statuses")
    for i = 1, #latency_of do
      out:write(string.format("sample\t%d\t%d\t%d\n", page_of[i], status_of[i], latency_of[i]))
    end
  end
  local errors = summary.errors
  out:write("socket errors\t", errors.connect + errors.read + errors.write + errors.timeout, "\n")
  out:close()
end
