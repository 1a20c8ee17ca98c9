{{/* Names, labels and shared pod settings of the meshfed chart. */}}

{{- define "meshfed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name: the release name, unless it lacks the chart name. */}}
{{- define "meshfed.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "meshfed.federator.fullname" -}}
{{- printf "%s-federator" (include "meshfed.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshfed.collectors.fullname" -}}
{{- printf "%s-collectors" (include "meshfed.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The member ClusterRole(Binding): <fullname>-member, once (release meshfed-member). */}}
{{- define "meshfed.member.fullname" -}}
{{- $f := include "meshfed.fullname" . -}}
{{- if hasSuffix "-member" $f -}}
{{- $f -}}
{{- else -}}
{{- printf "%s-member" $f | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meshfed.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "meshfed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "federator"). */}}
{{- define "meshfed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshfed.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "meshfed.componentLabels" -}}
{{ include "meshfed.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "meshfed.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The kubeconfig Secret of one member cluster: (dict "root" $ "cluster" $c). */}}
{{- define "meshfed.clusterSecretName" -}}
{{- if .cluster.kubeconfig -}}
{{- printf "%s-%s-kubeconfig" (include "meshfed.fullname" .root) .cluster.name | trunc 253 -}}
{{- else if .cluster.secret -}}
{{- required (printf "federator.clusters[%s].secret.name is required" .cluster.name) .cluster.secret.name -}}
{{- else -}}
{{- printf "%s-kubeconfig" .cluster.name -}}
{{- end -}}
{{- end -}}

{{- define "meshfed.clusterSecretKey" -}}
{{- if and .cluster.secret (not .cluster.kubeconfig) -}}
{{- default "kubeconfig" .cluster.secret.key -}}
{{- else -}}
kubeconfig
{{- end -}}
{{- end -}}

{{/* NetworkPolicy peers: the given list, or every pod in the cluster. */}}
{{- define "meshfed.peers" -}}
{{- if . -}}
{{- toYaml . -}}
{{- else -}}
- namespaceSelector: {}
{{- end -}}
{{- end -}}
