# nginx configurations the counting scripts share (sourced): one worker, no master process, in
# the foreground, so the script's `$!` is the server itself.
#   source bench/load/nginx_confs.sh
#   nginx_backend_conf "$work/backend" 18090          # `return 200 "ok"`: the upstream
#   nginx_proxy_conf "$work" 18084 18090 full         # proxy_pass; `full`: + limit_req + access log
# Each writes DIR/nginx.conf (and DIR/logs); start it with `nginx -p DIR -c DIR/nginx.conf`.

nginx_backend_conf() {
  local dir=$1 port=$2
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGX
daemon off; master_process off; worker_processes 1; pid $dir/nginx.pid; error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
       server { listen 127.0.0.1:$port; location / { return 200 "ok"; } } }
NGX
}

# The peer of bench/load/proxy.yaml, or with `full` of proxy_full.yaml (limit_req set never to
# reject, the access log buffered to /dev/null as sluice's goes to a file).
nginx_proxy_conf() {
  local dir=$1 port=$2 backend=$3 full=${4:-}
  local alog="access_log off;" zone="" limit=""
  if [ -n "$full" ]; then
    alog="access_log /dev/null combined buffer=64k flush=1s;"
    zone="limit_req_zone \$binary_remote_addr zone=perip:10m rate=1000000r/s;"
    limit="limit_req zone=perip burst=100000 nodelay;"
  fi
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<NGX
master_process off; daemon off; worker_processes 1; pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http { $alog keepalive_requests 1000000; $zone
       upstream backend { server 127.0.0.1:$backend; keepalive 128; keepalive_requests 1000000; }
       server { listen 127.0.0.1:$port;
                location / { $limit proxy_pass http://backend; proxy_http_version 1.1;
                             proxy_set_header Connection ""; } } }
NGX
}
