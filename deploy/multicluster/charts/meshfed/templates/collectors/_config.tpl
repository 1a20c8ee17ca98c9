{{/* The collectors' config file (docs/collectors.md), as YAML text. */}}
{{- define "meshfed.collectors.config" -}}
{{- $c := .Values.collectors -}}
{{- $any := "0.0.0.0" -}}
{{- $http := dict "listen" (printf "%s:%d" $any (int $c.ports.http)) -}}
{{- if $c.http.tls.secretName -}}
{{- $_ := set $http "tls_cert_file" "/etc/meshfed/http-tls/tls.crt" -}}
{{- $_ := set $http "tls_key_file" "/etc/meshfed/http-tls/tls.key" -}}
{{- if $c.http.tls.clientCA -}}
{{- $_ := set $http "tls_client_ca_file" "/etc/meshfed/http-tls/ca.crt" -}}
{{- $_ := set $http "probe_listen" (printf "%s:%d" $any (int $c.ports.probes)) -}}
{{- end -}}
{{- end -}}
{{- if $c.http.auth.tokenSecret -}}
{{- $_ := set $http "bearer_token_file" "/etc/meshfed/http-token/token" -}}
{{- $_ := set $http "public_metrics" $c.http.auth.publicMetrics -}}
{{- end -}}
{{- $redis := dict -}}
{{- if eq $c.redis.mode "embedded" -}}
{{- $_ := set $redis "data_dir" "/var/lib/meshfed/redis" -}}
{{- $_ := set $redis "embedded_max_memory_mb" (int $c.redis.embedded.maxMemoryMB) -}}
{{- else if $c.redis.external.tls.secretName -}}
{{- $_ := set $redis "tls_ca_file" "/etc/meshfed/redis-tls/ca.crt" -}}
{{- if $c.redis.external.tls.clientCertificate -}}
{{- $_ := set $redis "tls_cert_file" "/etc/meshfed/redis-tls/tls.crt" -}}
{{- $_ := set $redis "tls_key_file" "/etc/meshfed/redis-tls/tls.key" -}}
{{- end -}}
{{- end -}}
{{- $own := dict "http" $http "store" (dict "redis" $redis) -}}
{{- $resource := dict -}}
{{- with $c.cluster }}{{ $_ := set $resource "cluster" . }}{{ end -}}
{{- with $c.region }}{{ $_ := set $resource "region" . }}{{ end -}}
{{- if $resource }}{{ $_ := set $own "resource" $resource }}{{ end -}}
{{- $r := $c.receivers -}}
{{- $_ := set $own "statsd" (ternary (dict "udp_listen" (printf "%s:%d" $any (int $c.ports.statsd)) "tcp_listen" (printf "%s:%d" $any (int $c.ports.statsd))) (dict "enabled" false) $r.statsd) -}}
{{- $_ := set $own "forward" (ternary (dict "listen" (printf "%s:%d" $any (int $c.ports.forward))) (dict "enabled" false) $r.forward) -}}
{{- $_ := set $own "otlp" (ternary (dict "grpc_listen" (printf "%s:%d" $any (int $c.ports.otlpGrpc)) "http_listen" (printf "%s:%d" $any (int $c.ports.otlpHttp))) (dict "enabled" false) $r.otlp) -}}
{{- if not $r.remoteWrite }}{{ $_ := set $own "remote_write" (dict "enabled" false) }}{{ end -}}
{{- toYaml (mergeOverwrite (deepCopy $c.settings) $own) -}}
{{- end -}}

{{/* Read-only mounts of the HTTP port's and Redis's Secrets (docs/api.md). */}}
{{- define "meshfed.collectors.secretMounts" -}}
{{- $c := .Values.collectors -}}
{{- if $c.http.tls.secretName }}
- { name: http-tls, mountPath: /etc/meshfed/http-tls, readOnly: true }
{{- end }}
{{- if $c.http.auth.tokenSecret }}
- { name: http-token, mountPath: /etc/meshfed/http-token, readOnly: true }
{{- end }}
{{- if and (eq $c.redis.mode "external") $c.redis.external.tls.secretName }}
- { name: redis-tls, mountPath: /etc/meshfed/redis-tls, readOnly: true }
{{- end }}
{{- end -}}

{{- define "meshfed.collectors.secretVolumes" -}}
{{- $c := .Values.collectors -}}
{{- with $c.http.tls.secretName }}
- name: http-tls
  secret: { secretName: {{ . }}, defaultMode: 0440 }
{{- end }}
{{- with $c.http.auth.tokenSecret }}
- name: http-token
  secret: { secretName: {{ . }}, defaultMode: 0440, items: [{ key: token, path: token }] }
{{- end }}
{{- if and (eq $c.redis.mode "external") $c.redis.external.tls.secretName }}
- name: redis-tls
  secret: { secretName: {{ $c.redis.external.tls.secretName }}, defaultMode: 0440 }
{{- end }}
{{- end -}}
