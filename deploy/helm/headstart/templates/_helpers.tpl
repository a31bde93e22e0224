{{/* The labels of every object, as deploy/ has them (no Helm-only labels: the chart renders deploy/'s objects). */}}
{{- define "headstart.labels" -}}
app.kubernetes.io/name: headstart
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The operator's ServiceAccount as the API server names it (the admission guard matches on it). */}}
{{- define "headstart.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:headstart-operator
{{- end }}

{{/* The progress endpoint's host, as training pods reach it (the Service) and its certificate names it. */}}
{{- define "headstart.serviceHost" -}}
headstart-operator.{{ .Release.Namespace }}.svc
{{- end }}

{{/* Values the schema cannot say: which namespaces go with which mode. One line each. */}}
{{- define "headstart.checkValues" -}}
{{- if eq .Values.mode "namespaced" }}
{{- if not .Values.watchNamespaces }}
{{- fail "watchNamespaces: mode=namespaced needs at least one namespace to watch, e.g. --set 'watchNamespaces={team-a}'" }}
{{- end }}
{{- else if .Values.watchNamespaces }}
{{- fail (printf "watchNamespaces: %s given with mode=cluster, which watches every namespace; add --set mode=namespaced to watch only those" (join "," .Values.watchNamespaces)) }}
{{- end }}
{{- end }}
