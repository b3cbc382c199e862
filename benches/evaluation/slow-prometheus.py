import http.server, socketserver, time, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('content-length',0)))
        time.sleep(0.5)
        b=json.dumps({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"1"]}]}}).encode()
        self.send_response(200); self.send_header('content-type','application/json'); self.send_header('content-length',str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self,*a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads=True; request_queue_size=128
S(("127.0.0.1",19392),H).serve_forever()
