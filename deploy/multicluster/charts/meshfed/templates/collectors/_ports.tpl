{{/* The collectors' ports, one list for the Service (port + targetPort by name). */}}
{{- define "meshfed.collectors.ports" -}}
{{- $c := .Values.collectors -}}
- { name: http, port: {{ $c.ports.http }}, targetPort: http, protocol: TCP }
{{- if $c.receivers.statsd }}
- { name: statsd-udp, port: {{ $c.ports.statsd }}, targetPort: statsd-udp, protocol: UDP }
- { name: statsd-tcp, port: {{ $c.ports.statsd }}, targetPort: statsd-tcp, protocol: TCP }
{{- end }}
{{- if $c.receivers.forward }}
- { name: tcp-forward, port: {{ $c.ports.forward }}, targetPort: tcp-forward, protocol: TCP }
{{- end }}
{{- if $c.receivers.otlp }}
- { name: grpc-otlp, port: {{ $c.ports.otlpGrpc }}, targetPort: grpc-otlp, protocol: TCP, appProtocol: grpc }
- { name: http-otlp, port: {{ $c.ports.otlpHttp }}, targetPort: http-otlp, protocol: TCP }
{{- end }}
{{- end -}}

{{/* The same ports as container ports. */}}
{{- define "meshfed.collectors.containerPorts" -}}
{{- $c := .Values.collectors -}}
- { name: http, containerPort: {{ $c.ports.http }}, protocol: TCP }
{{- if and $c.http.tls.secretName $c.http.tls.clientCA }}
- { name: probes, containerPort: {{ $c.ports.probes }}, protocol: TCP }
{{- end }}
{{- if $c.receivers.statsd }}
- { name: statsd-udp, containerPort: {{ $c.ports.statsd }}, protocol: UDP }
- { name: statsd-tcp, containerPort: {{ $c.ports.statsd }}, protocol: TCP }
{{- end }}
{{- if $c.receivers.forward }}
- { name: tcp-forward, containerPort: {{ $c.ports.forward }}, protocol: TCP }
{{- end }}
{{- if $c.receivers.otlp }}
- { name: grpc-otlp, containerPort: {{ $c.ports.otlpGrpc }}, protocol: TCP }
- { name: http-otlp, containerPort: {{ $c.ports.otlpHttp }}, protocol: TCP }
{{- end }}
{{- end -}}
