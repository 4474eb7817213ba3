-- wrk script: POST a SPEKE v2 request (the CPIX document in the file named by CLAVIS_BENCH_SPEKE_FILE).
local f = assert(io.open(os.getenv("CLAVIS_BENCH_SPEKE_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CLAVIS_BENCH_API_KEY")
wrk.headers["X-Speke-Version"] = "2.0"
wrk.headers["Content-Type"] = "application/xml"
