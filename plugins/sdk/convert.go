package sdk

import (
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/plugboard/plugboard/plugins/sdk/internal/proto"
)

// enumMap converts one Go string enum to and from its protobuf enum. The
// empty Go value and the UNSPECIFIED (zero) protobuf value map to each other
// so that every Go value round-trips.
type enumMap[G ~string, P ~int32] struct {
	name    string
	toProto map[G]P
	toGo    map[P]G
}

func newEnumMap[G ~string, P ~int32](name string, pairs map[G]P) enumMap[G, P] {
	m := enumMap[G, P]{name: name, toProto: map[G]P{"": 0}, toGo: map[P]G{0: ""}}
	for g, p := range pairs {
		m.toProto[g] = p
		m.toGo[p] = g
	}
	return m
}

// proto converts a Go value; an unknown one is the plugin author's bug.
func (m enumMap[G, P]) proto(g G) (P, error) {
	p, ok := m.toProto[g]
	if !ok {
		return 0, fmt.Errorf("unknown %s %q", m.name, string(g))
	}
	return p, nil
}

// goValue converts a protobuf value. A number this SDK does not know (sent
// by a newer plugin) becomes a value no validation accepts, rather than an
// error that would hide the rest of the message.
func (m enumMap[G, P]) goValue(p P) G {
	if g, ok := m.toGo[p]; ok {
		return g
	}
	return G(fmt.Sprintf("UNKNOWN_%s_%d", m.name, int32(p)))
}

var (
	authKinds = newEnumMap("auth kind", map[AuthKind]pb.AuthKind{
		AuthAPIKey:                  pb.AuthKind_AUTH_KIND_API_KEY,
		AuthBasic:                   pb.AuthKind_AUTH_KIND_BASIC,
		AuthOAuth2AuthorizationCode: pb.AuthKind_AUTH_KIND_OAUTH2_AUTHORIZATION_CODE,
		AuthOAuth2ClientCredentials: pb.AuthKind_AUTH_KIND_OAUTH2_CLIENT_CREDENTIALS,
		AuthCustom:                  pb.AuthKind_AUTH_KIND_CUSTOM,
	})
	inputTypes = newEnumMap("input type", map[InputType]pb.InputType{
		InputString:   pb.InputType_INPUT_TYPE_STRING,
		InputPassword: pb.InputType_INPUT_TYPE_PASSWORD,
		InputText:     pb.InputType_INPUT_TYPE_TEXT,
		InputBoolean:  pb.InputType_INPUT_TYPE_BOOLEAN,
		InputPicklist: pb.InputType_INPUT_TYPE_PICKLIST,
		InputURL:      pb.InputType_INPUT_TYPE_URL,
		InputNumber:   pb.InputType_INPUT_TYPE_NUMBER,
		InputJSON:     pb.InputType_INPUT_TYPE_JSON,
		InputTemplate: pb.InputType_INPUT_TYPE_TEMPLATE,
	})
	collections = newEnumMap("collection", map[Collection]pb.Collection{
		CollectionNone:         pb.Collection_COLLECTION_NONE,
		CollectionValueList:    pb.Collection_COLLECTION_VALUE_LIST,
		CollectionKeyValueList: pb.Collection_COLLECTION_KEY_VALUE_LIST,
	})
	pkceMethods = newEnumMap("PKCE method", map[PKCEMethod]pb.PKCEMethod{
		PKCES256:  pb.PKCEMethod_PKCE_METHOD_S256,
		PKCEPlain: pb.PKCEMethod_PKCE_METHOD_PLAIN,
		PKCENone:  pb.PKCEMethod_PKCE_METHOD_NONE,
	})
	authStyles = newEnumMap("token auth style", map[TokenAuthStyle]pb.TokenAuthStyle{
		AuthStyleHeader: pb.TokenAuthStyle_TOKEN_AUTH_STYLE_HEADER,
		AuthStyleBody:   pb.TokenAuthStyle_TOKEN_AUTH_STYLE_BODY,
	})
	injectStyles = newEnumMap("inject style", map[InjectStyle]pb.InjectStyle{
		InjectBearer: pb.InjectStyle_INJECT_STYLE_BEARER,
		InjectHeader: pb.InjectStyle_INJECT_STYLE_HEADER,
		InjectBasic:  pb.InjectStyle_INJECT_STYLE_BASIC,
		InjectQuery:  pb.InjectStyle_INJECT_STYLE_QUERY,
	})
	severities = newEnumMap("severity", map[Severity]pb.Severity{
		SeverityError:   pb.Severity_SEVERITY_ERROR,
		SeverityWarning: pb.Severity_SEVERITY_WARNING,
	})
)

func descriptionToProto(d *Description) (*pb.DescribeResponse, error) {
	if d == nil {
		return nil, fmt.Errorf("Describe returned no description")
	}
	out := &pb.DescribeResponse{Key: d.Key, Version: d.Version}
	for i := range d.ConnectionTypes {
		ct, err := connectionTypeToProto(&d.ConnectionTypes[i])
		if err != nil {
			return nil, fmt.Errorf("connection type %q: %w", d.ConnectionTypes[i].Key, err)
		}
		out.ConnectionTypes = append(out.ConnectionTypes, ct)
	}
	return out, nil
}

func connectionTypeToProto(ct *ConnectionType) (*pb.ConnectionType, error) {
	kind, err := authKinds.proto(ct.AuthKind)
	if err != nil {
		return nil, err
	}
	out := &pb.ConnectionType{
		Key:             ct.Key,
		Label:           ct.Label,
		Description:     ct.Description,
		IconUrl:         ct.IconURL,
		IconSvg:         ct.IconSVG,
		AuthKind:        kind,
		SchemaVersion:   int32(ct.SchemaVersion),
		TestThroughHost: ct.TestThroughHost,
	}
	for i := range ct.Inputs {
		in, err := inputToProto(&ct.Inputs[i])
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", ct.Inputs[i].Key, err)
		}
		out.Inputs = append(out.Inputs, in)
	}
	if ct.OAuth2 != nil {
		if out.Oauth2, err = oauth2ToProto(ct.OAuth2); err != nil {
			return nil, fmt.Errorf("OAuth2 spec: %w", err)
		}
	}
	if ct.HTTP != nil {
		if out.Http, err = httpToProto(ct.HTTP); err != nil {
			return nil, fmt.Errorf("HTTP spec: %w", err)
		}
	}
	return out, nil
}

func httpToProto(s *HTTPSpec) (*pb.HTTPSpec, error) {
	style, err := injectStyles.proto(s.Inject)
	if err != nil {
		return nil, err
	}
	return &pb.HTTPSpec{
		BaseUrl: s.BaseURL, AllowedHosts: s.AllowedHosts, Inject: style, Input: s.Input,
		Header: s.Header, Prefix: s.Prefix, UsernameInput: s.UsernameInput,
		PasswordInput: s.PasswordInput, QueryParam: s.QueryParam,
		RateLimitResetHeader: s.RateLimitResetHeader, BaseUrlOverrideInput: s.BaseURLOverrideInput,
	}, nil
}

func httpFromProto(s *pb.HTTPSpec) *HTTPSpec {
	return &HTTPSpec{
		BaseURL: s.GetBaseUrl(), AllowedHosts: s.GetAllowedHosts(), Inject: injectStyles.goValue(s.GetInject()),
		Input: s.GetInput(), Header: s.GetHeader(), Prefix: s.GetPrefix(),
		UsernameInput: s.GetUsernameInput(), PasswordInput: s.GetPasswordInput(),
		QueryParam: s.GetQueryParam(), RateLimitResetHeader: s.GetRateLimitResetHeader(),
		BaseURLOverrideInput: s.GetBaseUrlOverrideInput(),
	}
}

func inputToProto(in *Input) (*pb.Input, error) {
	typ, err := inputTypes.proto(in.Type)
	if err != nil {
		return nil, err
	}
	coll, err := collections.proto(in.Collection)
	if err != nil {
		return nil, err
	}
	out := &pb.Input{
		Key:              in.Key,
		Label:            in.Label,
		Type:             typ,
		Required:         in.Required,
		Default:          in.Default,
		Example:          in.Example,
		Placeholder:      in.Placeholder,
		Description:      in.Description,
		Hidden:           in.Hidden,
		Secret:           in.Secret,
		Pattern:          in.Pattern,
		PatternMessage:   in.PatternMessage,
		Collection:       coll,
		OnPremControlled: in.OnPremControlled,
		Template:         in.Template,
	}
	for _, o := range in.Options {
		out.Options = append(out.Options, &pb.Option{Value: o.Value, Label: o.Label})
	}
	return out, nil
}

func oauth2ToProto(s *OAuth2Spec) (*pb.OAuth2Spec, error) {
	pkce, err := pkceMethods.proto(s.PKCE)
	if err != nil {
		return nil, err
	}
	style, err := authStyles.proto(s.AuthStyle)
	if err != nil {
		return nil, err
	}
	out := &pb.OAuth2Spec{
		AuthorizeUrl:         s.AuthorizeURL,
		TokenUrl:             s.TokenURL,
		RevokeUrl:            s.RevokeURL,
		Scopes:               s.Scopes,
		ScopeSeparator:       s.ScopeSeparator,
		Pkce:                 pkce,
		AuthStyle:            style,
		ClientIdInput:        s.ClientIDInput,
		ClientSecretInput:    s.ClientSecretInput,
		ExtraAuthorizeParams: s.ExtraAuthorizeParams,
		ExtraTokenParams:     s.ExtraTokenParams,
	}
	if s.RefreshMargin != 0 {
		out.RefreshMargin = durationpb.New(s.RefreshMargin)
	}
	return out, nil
}

func descriptionFromProto(r *pb.DescribeResponse) *Description {
	out := &Description{Key: r.GetKey(), Version: r.GetVersion()}
	for _, ct := range r.GetConnectionTypes() {
		out.ConnectionTypes = append(out.ConnectionTypes, connectionTypeFromProto(ct))
	}
	return out
}

func connectionTypeFromProto(ct *pb.ConnectionType) ConnectionType {
	out := ConnectionType{
		Key:             ct.GetKey(),
		Label:           ct.GetLabel(),
		Description:     ct.GetDescription(),
		IconURL:         ct.GetIconUrl(),
		IconSVG:         ct.GetIconSvg(),
		AuthKind:        authKinds.goValue(ct.GetAuthKind()),
		SchemaVersion:   int(ct.GetSchemaVersion()),
		TestThroughHost: ct.GetTestThroughHost(),
	}
	for _, in := range ct.GetInputs() {
		out.Inputs = append(out.Inputs, inputFromProto(in))
	}
	if s := ct.GetOauth2(); s != nil {
		out.OAuth2 = oauth2FromProto(s)
	}
	if s := ct.GetHttp(); s != nil {
		out.HTTP = httpFromProto(s)
	}
	return out
}

func inputFromProto(in *pb.Input) Input {
	out := Input{
		Key:              in.GetKey(),
		Label:            in.GetLabel(),
		Type:             inputTypes.goValue(in.GetType()),
		Required:         in.GetRequired(),
		Default:          in.GetDefault(),
		Example:          in.GetExample(),
		Placeholder:      in.GetPlaceholder(),
		Description:      in.GetDescription(),
		Hidden:           in.GetHidden(),
		Secret:           in.GetSecret(),
		Pattern:          in.GetPattern(),
		PatternMessage:   in.GetPatternMessage(),
		Collection:       collections.goValue(in.GetCollection()),
		OnPremControlled: in.GetOnPremControlled(),
		Template:         in.GetTemplate(),
	}
	for _, o := range in.GetOptions() {
		out.Options = append(out.Options, Option{Value: o.GetValue(), Label: o.GetLabel()})
	}
	return out
}

func oauth2FromProto(s *pb.OAuth2Spec) *OAuth2Spec {
	out := &OAuth2Spec{
		AuthorizeURL:         s.GetAuthorizeUrl(),
		TokenURL:             s.GetTokenUrl(),
		RevokeURL:            s.GetRevokeUrl(),
		Scopes:               s.GetScopes(),
		ScopeSeparator:       s.GetScopeSeparator(),
		PKCE:                 pkceMethods.goValue(s.GetPkce()),
		AuthStyle:            authStyles.goValue(s.GetAuthStyle()),
		ClientIDInput:        s.GetClientIdInput(),
		ClientSecretInput:    s.GetClientSecretInput(),
		ExtraAuthorizeParams: nilIfEmpty(s.GetExtraAuthorizeParams()),
		ExtraTokenParams:     nilIfEmpty(s.GetExtraTokenParams()),
	}
	if d := s.GetRefreshMargin(); d != nil {
		out.RefreshMargin = d.AsDuration()
	}
	return out
}

func diagnosticsToProto(ds []Diagnostic) ([]*pb.Diagnostic, error) {
	var out []*pb.Diagnostic
	for _, d := range ds {
		sev, err := severities.proto(d.Severity)
		if err != nil {
			return nil, fmt.Errorf("diagnostic for field %q: %w", d.Field, err)
		}
		out = append(out, &pb.Diagnostic{Field: d.Field, Severity: sev, Summary: d.Summary, Detail: d.Detail})
	}
	return out, nil
}

func diagnosticsFromProto(ds []*pb.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		out = append(out, Diagnostic{
			Field:    d.GetField(),
			Severity: severities.goValue(d.GetSeverity()),
			Summary:  d.GetSummary(),
			Detail:   d.GetDetail(),
		})
	}
	return out
}

func tokenToProto(t *Token) *pb.Token {
	if t == nil {
		return nil
	}
	out := &pb.Token{
		AccessToken:  t.AccessToken,
		TokenType:    t.TokenType,
		RefreshToken: t.RefreshToken,
		Extra:        t.Extra,
	}
	if !t.Expiry.IsZero() {
		out.Expiry = timestamppb.New(t.Expiry)
	}
	return out
}

func tokenFromProto(t *pb.Token) *Token {
	if t == nil {
		return nil
	}
	out := &Token{
		AccessToken:  t.GetAccessToken(),
		TokenType:    t.GetTokenType(),
		RefreshToken: t.GetRefreshToken(),
		Extra:        nilIfEmpty(t.GetExtra()),
	}
	if e := t.GetExpiry(); e != nil {
		out.Expiry = e.AsTime()
	}
	return out
}

// nilIfEmpty keeps "no map" and "empty map" the same on both sides of the
// wire, which cannot tell them apart.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
