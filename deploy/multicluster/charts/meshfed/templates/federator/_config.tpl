{{/* The federator's federation.yaml (docs/configuration.md), as YAML text. */}}
{{- define "meshfed.federator.config" -}}
{{- $f := .Values.federator -}}
{{- $clusters := list -}}
{{- range $f.clusters -}}
{{- $c := omit . "kubeconfig" "secret" -}}
{{- $ref := dict "root" $ "cluster" . -}}
{{- $_ := set $c "secret" (dict "name" (include "meshfed.clusterSecretName" $ref) "key" (include "meshfed.clusterSecretKey" $ref)) -}}
{{- $clusters = append $clusters $c -}}
{{- end -}}
{{- $le := $f.leaderElection -}}
{{- $own := dict
  "apiVersion" "meshfed.io/v1alpha1"
  "kind" "FederationConfig"
  "namespace" .Release.Namespace
  "listen" (dict "http" (printf "0.0.0.0:%d" (int $f.ports.http)) "grpc" (printf "0.0.0.0:%d" (int $f.ports.grpc)))
  "leaderElection" (dict "enabled" $le.enabled "leaseName" $le.leaseName "leaseDuration" $le.leaseDuration "renewDeadline" $le.renewDeadline "retryPeriod" $le.retryPeriod)
  "clusters" $clusters
-}}
{{- if $f.drills.enabled -}}
{{- /* The Role grants the drill rights in the release namespace only: drills run there. */ -}}
{{- $_ := set $own "drills" (dict "enabled" true "namespace" .Release.Namespace) -}}
{{- end -}}
{{- range $section := list "api" "http" -}}
{{- $v := index $f $section -}}
{{- $sec := dict -}}
{{- if $v.tls.secretName -}}
{{- $dir := printf "/etc/meshfed/%s-tls" $section -}}
{{- $tls := dict "certFile" (printf "%s/tls.crt" $dir) "keyFile" (printf "%s/tls.key" $dir) -}}
{{- if $v.tls.clientCA -}}
{{- $_ := set $tls "clientCAFile" (printf "%s/ca.crt" $dir) -}}
{{- end -}}
{{- $_ := set $sec "tls" $tls -}}
{{- end -}}
{{- if $v.auth.tokenSecret -}}
{{- $_ := set $sec "tokenFile" (printf "/etc/meshfed/%s-token/token" $section) -}}
{{- end -}}
{{- if $sec -}}
{{- $_ := set $own $section $sec -}}
{{- end -}}
{{- end -}}
{{- toYaml (mergeOverwrite (deepCopy $f.settings) $own) -}}
{{- end -}}

{{/* Read-only mounts of the TLS and token Secrets of the status API (docs/api.md) and of
the HTTP port (/metrics; docs/security.md). */}}
{{- define "meshfed.federator.apiMounts" -}}
{{- range $section := list "api" "http" }}
{{- $v := index $.Values.federator $section }}
{{- if $v.tls.secretName }}
- { name: {{ $section }}-tls, mountPath: /etc/meshfed/{{ $section }}-tls, readOnly: true }
{{- end }}
{{- if $v.auth.tokenSecret }}
- { name: {{ $section }}-token, mountPath: /etc/meshfed/{{ $section }}-token, readOnly: true }
{{- end }}
{{- end }}
{{- end -}}

{{- define "meshfed.federator.apiVolumes" -}}
{{- range $section := list "api" "http" }}
{{- $v := index $.Values.federator $section }}
{{- with $v.tls.secretName }}
- name: {{ $section }}-tls
  secret: { secretName: {{ . }}, defaultMode: 0440 }
{{- end }}
{{- with $v.auth.tokenSecret }}
- name: {{ $section }}-token
  secret: { secretName: {{ . }}, defaultMode: 0440, items: [{ key: token, path: token }] }
{{- end }}
{{- end }}
{{- end -}}
