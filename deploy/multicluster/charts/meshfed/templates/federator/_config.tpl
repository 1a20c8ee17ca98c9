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
{{- $api := dict -}}
{{- with $f.api.tls.secretName -}}
{{- $tls := dict "certFile" "/etc/meshfed/api-tls/tls.crt" "keyFile" "/etc/meshfed/api-tls/tls.key" -}}
{{- if $f.api.tls.clientCA -}}
{{- $_ := set $tls "clientCAFile" "/etc/meshfed/api-tls/ca.crt" -}}
{{- end -}}
{{- $_ := set $api "tls" $tls -}}
{{- end -}}
{{- with $f.api.auth.tokenSecret -}}
{{- $_ := set $api "tokenFile" "/etc/meshfed/api-token/token" -}}
{{- end -}}
{{- if $api -}}
{{- $_ := set $own "api" $api -}}
{{- end -}}
{{- toYaml (mergeOverwrite (deepCopy $f.settings) $own) -}}
{{- end -}}

{{/* Read-only mounts of the status API's TLS and token Secrets (docs/api.md). */}}
{{- define "meshfed.federator.apiMounts" -}}
{{- if .Values.federator.api.tls.secretName }}
- { name: api-tls, mountPath: /etc/meshfed/api-tls, readOnly: true }
{{- end }}
{{- if .Values.federator.api.auth.tokenSecret }}
- { name: api-token, mountPath: /etc/meshfed/api-token, readOnly: true }
{{- end }}
{{- end -}}

{{- define "meshfed.federator.apiVolumes" -}}
{{- with .Values.federator.api.tls.secretName }}
- name: api-tls
  secret: { secretName: {{ . }}, defaultMode: 0440 }
{{- end }}
{{- with .Values.federator.api.auth.tokenSecret }}
- name: api-token
  secret: { secretName: {{ . }}, defaultMode: 0440, items: [{ key: token, path: token }] }
{{- end }}
{{- end -}}
