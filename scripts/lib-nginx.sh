# Shared by the signer benchmarks (sourced after scripts/lib-processes.sh, not run): an
# nginx on loopback that answers every request at once with a canned answer, so that what is
# timed behind it is the signer's own work.
#
# wait_http URL        waits (at most 10 s) until URL answers; exits 2 if it never does.
# start_canned_nginx   starts nginx on a free port, in $work/nginx, with its PID in $pids,
#                      and sets $up to that port: `/completion` answers a llama.cpp SSE
#                      stream of five messages, every other path an OpenAI chat completion.

wait_http() {
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    printf '%s did not answer\n' "$1" >&2
    exit 2
}

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
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null &
pids+=($!)
wait_http "http://127.0.0.1:$up/"
}
