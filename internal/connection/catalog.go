package connection

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connectiontype"
	"github.com/plugboard/plugboard/ent/plugin"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/pluginhost"
	"github.com/plugboard/plugboard/plugins/sdk"
)

// Catalog stores what plugins declare, so read queries never call a plugin.
type Catalog struct {
	DB *ent.Client

	version atomic.Uint64
	// icons are the SVG icons of the loaded plugins' types, by type key:
	// every replica loads the same plugins, so each serves them itself.
	iconsMu sync.RWMutex
	icons   map[string][]byte
}

// IconPath is where plugboard serves the SVG icon of the connection type
// key; a type whose plugin ships an icon has it as its iconURL.
func IconPath(key string) string { return "/catalog/icons/" + key + ".svg" }

// Icon returns the SVG icon the plugin of type key declared.
func (c *Catalog) Icon(key string) ([]byte, bool) {
	c.iconsMu.RLock()
	defer c.iconsMu.RUnlock()
	b, ok := c.icons[key]
	return b, ok
}

// keepIcons records the icons of d's types.
func (c *Catalog) keepIcons(d *sdk.Description) {
	c.iconsMu.Lock()
	defer c.iconsMu.Unlock()
	if c.icons == nil {
		c.icons = map[string][]byte{}
	}
	for i := range d.ConnectionTypes {
		ct := &d.ConnectionTypes[i]
		if len(ct.IconSVG) > 0 {
			c.icons[ct.Key] = ct.IconSVG
		} else {
			delete(c.icons, ct.Key)
		}
	}
}

// Version changes whenever this process records a change of the catalog;
// caches of catalog answers compare it.
func (c *Catalog) Version() uint64 { return c.version.Load() }

// SyncPlugin records a plugin's status and, when d is not nil, the
// connection types it declared: new types are created, changed ones updated,
// and types it no longer declares are marked unavailable (connections of
// them keep existing).
func (c *Catalog) SyncPlugin(ctx context.Context, p pluginhost.PluginInfo, d *sdk.Description) error {
	ctx = auth.SystemContext(ctx)
	// Bump before and after: a reader between the two sees neither the old
	// nor the new answer as current.
	c.version.Add(1)
	defer c.version.Add(1)
	if d != nil {
		c.keepIcons(d)
	}
	return inTx(ctx, c.DB, func(tx *ent.Tx) error {
		if err := syncPlugin(ctx, tx.Client(), p, d); err != nil {
			return fmt.Errorf("storing plugin %s: %w", p.Name, err)
		}
		return nil
	})
}

// syncPlugin stores p and, when d is not nil, its declared connection types.
func syncPlugin(ctx context.Context, db *ent.Client, p pluginhost.PluginInfo, d *sdk.Description) error {
	id, err := upsertPlugin(ctx, db, p)
	if err != nil {
		return err
	}
	if d == nil {
		return nil
	}
	if err := db.Plugin.UpdateOneID(id).SetLoadedAt(time.Now().UTC()).Exec(ctx); err != nil {
		return err
	}
	declared := make([]string, 0, len(d.ConnectionTypes))
	for i := range d.ConnectionTypes {
		ct := &d.ConnectionTypes[i]
		declared = append(declared, ct.Key)
		if err := upsertConnectionType(ctx, db, id, ct); err != nil {
			return fmt.Errorf("type %s: %w", ct.Key, err)
		}
	}
	return db.ConnectionType.Update().
		Where(connectiontype.PluginID(id), connectiontype.KeyNotIn(declared...)).
		SetAvailable(false).
		Exec(ctx)
}

// upsertPlugin creates or updates the row of p by its name and returns its
// id. A plugin that never loaded (no key) keeps the key and version last
// recorded.
func upsertPlugin(ctx context.Context, db *ent.Client, p pluginhost.PluginInfo) (int, error) {
	return db.Plugin.Create().
		SetName(p.Name).
		SetKey(p.Key).
		SetVersion(p.Version).
		SetSha256(p.SHA256).
		SetProtocolVersion(p.ProtocolVersion).
		SetStatus(plugin.Status(p.Status)).
		SetLastError(p.LastError).
		SetRestarts(p.Restarts).
		OnConflictColumns(plugin.FieldName).
		Update(func(u *ent.PluginUpsert) {
			u.UpdateSha256().UpdateStatus().UpdateLastError().UpdateRestarts().UpdateUpdatedAt()
			if p.Key != "" {
				u.UpdateKey().UpdateVersion().UpdateProtocolVersion()
			}
		}).
		ID(ctx)
}

// upsertConnectionType creates or updates, by its key, the available
// connection type ct of the plugin pluginID.
func upsertConnectionType(ctx context.Context, db *ent.Client, pluginID int, ct *sdk.ConnectionType) error {
	create := db.ConnectionType.Create().
		SetKey(ct.Key).
		SetPluginID(pluginID).
		SetLabel(ct.Label).
		SetDescription(ct.Description).
		SetIconURL(iconURL(ct)).
		SetAuthKind(connectiontype.AuthKind(ct.AuthKind)).
		SetInputs(InputsFromSDK(ct.Inputs)).
		SetSchemaVersion(max(ct.SchemaVersion, 1)).
		SetAvailable(true)
	if ct.OAuth2 != nil {
		create.SetOauth2(OAuth2FromSDK(ct.OAuth2))
	}
	if ct.HTTP != nil {
		create.SetHTTP(HTTPFromSDK(ct.HTTP))
	}
	return create.OnConflictColumns(connectiontype.FieldKey).
		Update(func(u *ent.ConnectionTypeUpsert) {
			u.UpdatePluginID().UpdateLabel().UpdateDescription().UpdateIconURL().
				UpdateAuthKind().UpdateInputs().UpdateSchemaVersion().UpdateAvailable().
				UpdateUpdatedAt()
			if ct.OAuth2 != nil {
				u.UpdateOauth2()
			} else {
				u.ClearOauth2()
			}
			if ct.HTTP != nil {
				u.UpdateHTTP()
			} else {
				u.ClearHTTP()
			}
		}).
		Exec(ctx)
}

// iconURL is the type's icon address: plugboard's own when the plugin
// ships an SVG icon, else the https URL it declared.
func iconURL(ct *sdk.ConnectionType) string {
	if len(ct.IconSVG) > 0 {
		return IconPath(ct.Key)
	}
	return ct.IconURL
}

// InputsFromSDK converts declared inputs to their stored form.
func InputsFromSDK(in []sdk.Input) []schematype.Input {
	out := make([]schematype.Input, 0, len(in))
	for _, i := range in {
		opts := make([]schematype.Option, 0, len(i.Options))
		for _, o := range i.Options {
			opts = append(opts, schematype.Option{Value: o.Value, Label: o.Label})
		}
		coll := i.Collection
		if coll == "" {
			coll = sdk.CollectionNone
		}
		out = append(out, schematype.Input{
			Key: i.Key, Label: i.Label, Type: schematype.InputType(i.Type),
			Required: i.Required, Default: i.Default, Example: i.Example,
			Placeholder: i.Placeholder, Description: i.Description,
			Shown: !i.Hidden, Secret: i.Secret, Options: opts, Pattern: i.Pattern, PatternMessage: i.PatternMessage,
			Collection: schematype.Collection(coll), OnPremControlled: i.OnPremControlled,
			Template: i.Template,
		})
	}
	return out
}

// InputsToSDK converts stored inputs back to the SDK's form, for the
// checks the SDK shares with plugins.
func InputsToSDK(in []schematype.Input) []sdk.Input {
	out := make([]sdk.Input, 0, len(in))
	for _, i := range in {
		opts := make([]sdk.Option, 0, len(i.Options))
		for _, o := range i.Options {
			opts = append(opts, sdk.Option{Value: o.Value, Label: o.Label})
		}
		out = append(out, sdk.Input{
			Key: i.Key, Label: i.Label, Type: sdk.InputType(i.Type),
			Required: i.Required, Default: i.Default, Example: i.Example,
			Placeholder: i.Placeholder, Description: i.Description,
			Hidden: !i.Shown, Secret: i.Secret, Options: opts, Pattern: i.Pattern, PatternMessage: i.PatternMessage,
			Collection: sdk.Collection(i.Collection), OnPremControlled: i.OnPremControlled,
			Template: i.Template,
		})
	}
	return out
}

// OAuth2FromSDK converts a declared OAuth 2.0 spec to its stored form.
func OAuth2FromSDK(s *sdk.OAuth2Spec) *schematype.OAuth2Spec {
	sep := s.ScopeSeparator
	if sep == "" {
		sep = " "
	}
	pkce := s.PKCE
	if pkce == "" {
		pkce = sdk.PKCES256
	}
	style := s.AuthStyle
	if style == "" {
		style = sdk.AuthStyleHeader
	}
	cid, csec := s.ClientIDInput, s.ClientSecretInput
	if cid == "" {
		cid = "clientId"
	}
	if csec == "" {
		csec = "clientSecret"
	}
	return &schematype.OAuth2Spec{
		AuthorizeURL: s.AuthorizeURL, TokenURL: s.TokenURL, RevokeURL: s.RevokeURL,
		Scopes: s.Scopes, ScopeSeparator: sep, PKCEMethod: string(pkce),
		AuthStyle: string(style), ClientIDInput: cid, ClientSecretInput: csec,
		ExtraAuthorizeParams: s.ExtraAuthorizeParams, ExtraTokenParams: s.ExtraTokenParams,
		RefreshMarginSeconds: int64(s.RefreshMargin / time.Second),
	}
}

// HTTPFromSDK converts a declared HTTP spec to its stored form.
func HTTPFromSDK(s *sdk.HTTPSpec) *schematype.HTTPSpec {
	return &schematype.HTTPSpec{
		BaseURL: s.BaseURL, AllowedHosts: s.AllowedHosts, BaseURLOverrideInput: s.BaseURLOverrideInput,
		Inject: string(s.Inject), Input: s.Input, Header: s.Header, Prefix: s.Prefix,
		UsernameInput: s.UsernameInput, PasswordInput: s.PasswordInput, QueryParam: s.QueryParam,
		RateLimitResetHeader: s.RateLimitResetHeader,
	}
}
