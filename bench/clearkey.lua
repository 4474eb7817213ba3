-- wrk script: POST a ClearKey license request with a valid token (from the environment).
wrk.method = "POST"
wrk.body = os.getenv("CLAVIS_BENCH_BODY")
wrk.headers["X-Clavis-Token"] = os.getenv("CLAVIS_BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
