# Shared by the signer benchmarks (sourced after scripts/lib-processes.sh, not run): an
# nginx on loopback that answers every request at once with a canned answer, so that what is
# timed behind it is the signer's own work.
#
# wait_http NAME PID LOG URL
#                      waits (at most 10 s) until URL answers at all, watching the child PID
#                      (scripts/lib-processes.sh's wait_up: a child that exits first is
#                      reported at once with its status and the last lines of LOG).
# wait_ok NAME PID LOG URL SECONDS
#                      the same, until URL answers 2xx (llama-server's /health once the model
#                      is loaded), at most SECONDS.
# start_canned_nginx   starts nginx on a free port, in $work/nginx, with its PID in $pids,
#                      and sets $up to that port: `/completion` answers a llama.cpp SSE
#                      stream of five messages, every other path an OpenAI chat completion.
# start_proxy_nginx PORT [close]
#                      starts a second nginx, the peer: a plain reverse proxy (proxy_pass)
#                      in front of 127.0.0.1:PORT, configured as operators put nginx in front
#                      of a model server (keep-alive upstream connections, responses not
#                      buffered so that streams pass as they come, one worker per core), and
#                      sets $peer to its port. It signs nothing: its rows are what one extra
#                      HTTP hop through the field's usual proxy costs on the same machine.
#                      With `close`, a new upstream connection per request: in front of
#                      llama-server, whose HTTP server closes a connection after a streamed
#                      answer, nginx otherwise sends the next POST on the closed connection
#                      and answers 502 (50 of 156 streamed answers at one client, measured).

wait_http() { wait_up "$1" "$2" "$3" "$4" 10 any; }
wait_ok() { wait_up "$1" "$2" "$3" "$4" "$5" ok; }

start_canned_nginx() {
up="$(free_port)"
json='{"id":"chatcmpl-1","object":"chat.completion","created":1793491198,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"The sky is blue because of Rayleigh scattering."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":10,"total_tokens":19}}'
sse='data: {"content":"The sky","stop":false}

data: {"content":" is blue","stop":false}

data: {"content":" because of","stop":false}

data: {"content":" Rayleigh scattering.","stop":false}

data: {"content":"","stop":true,"stop_type":"eos","tokens_predicted":4,"tokens_evaluated":6}

'
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$up;
        location /completion {
            default_type text/event-stream;
            return 200 '$sse';
        }
        location / {
            default_type application/json;
            return 200 '$json';
        }
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>"$work/nginx/stderr.log" &
pids+=($!)
wait_http "nginx (canned upstream)" "$!" "$work/nginx/stderr.log" "http://127.0.0.1:$up/"
}

start_proxy_nginx() {
local target="$1" dir="$work/nginx-proxy-$1" keepalive="keepalive 128; keepalive_requests 1000000;"
local connection='""'
[ "${2:-}" = close ] && keepalive="" && connection=close
peer="$(free_port)"
mkdir -p "$dir"
cat > "$dir/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream model { server 127.0.0.1:$target; $keepalive }
    server {
        listen 127.0.0.1:$peer;
        client_body_buffer_size 64k;
        location / {
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection $connection;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }
    }
}
EOF
nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/stderr.log" &
pids+=($!)
wait_http "nginx (peer proxy)" "$!" "$dir/stderr.log" "http://127.0.0.1:$peer/"
}
