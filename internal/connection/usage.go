package connection

import (
	"context"
	"sort"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/connection"
	"github.com/plugboard/plugboard/ent/connectionslot"
	"github.com/plugboard/plugboard/ent/credential"
	"github.com/plugboard/plugboard/ent/customer"
)

// InstanceUse is one instance slot that uses a connection.
type InstanceUse struct {
	Instance *ent.Instance
	Customer *ent.Customer
	SlotKey  string
	// Credential is the credential the slot uses now, nil if none.
	Credential  *ent.Credential
	NeedsDeploy bool
}

// Usage says where a connection is used.
type Usage struct {
	Connection   *ent.Connection
	Integrations []*ent.Integration
	Instances    []InstanceUse
	// Customers are the customers of the instances and those holding a
	// credential of the connection.
	Customers []*ent.Customer
}

// ConnectionUsage returns the integrations, instances and customers that
// use a connection; ErrNotFound when there is no such connection in the
// viewer's organization, as node answers.
func (s *Service) ConnectionUsage(ctx context.Context, connectionID int) (*Usage, error) {
	if _, err := Authorize(ctx, ReadUsage); err != nil {
		return nil, err
	}
	conn, err := s.DB.Connection.Query().Where(connection.ID(connectionID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound("connection", connectionID)
	}
	if err != nil {
		return nil, err
	}
	u, err := s.usage(ctx, s.DB, conn)
	if err != nil {
		return nil, err
	}
	custIDs := map[int]bool{}
	for _, iu := range u.Instances {
		custIDs[iu.Instance.CustomerID] = true
	}
	held, err := s.DB.Credential.Query().Where(credential.ConnectionID(conn.ID), credential.CustomerIDNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range held {
		custIDs[*c.CustomerID] = true
	}
	ids := make([]int, 0, len(custIDs))
	for id := range custIDs {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	if len(ids) > 0 {
		if u.Customers, err = s.DB.Customer.Query().Where(customer.IDIn(ids...)).Order(ent.Asc(customer.FieldID)).All(ctx); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// usage lists the integrations with a slot of conn and their instances.
func (s *Service) usage(ctx context.Context, db *ent.Client, conn *ent.Connection) (*Usage, error) {
	u := &Usage{Connection: conn, Integrations: []*ent.Integration{}, Instances: []InstanceUse{}, Customers: []*ent.Customer{}}
	slots, err := db.ConnectionSlot.Query().Where(connectionslot.ConnectionID(conn.ID)).
		WithIntegration(func(q *ent.IntegrationQuery) {
			q.WithInstances(func(q *ent.InstanceQuery) { q.WithCustomer() })
		}).
		Order(ent.Asc(connectionslot.FieldIntegrationID), ent.Asc(connectionslot.FieldPosition)).All(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[int]bool{}
	for _, sl := range slots {
		ig := sl.Edges.Integration
		if ig == nil {
			continue
		}
		if !seen[ig.ID] {
			seen[ig.ID] = true
			u.Integrations = append(u.Integrations, ig)
		}
		for _, inst := range ig.Edges.Instances {
			states, err := s.slotStates(ctx, db, inst)
			if err != nil {
				return nil, err
			}
			// An instance never deployed needs its first deploy.
			iu := InstanceUse{Instance: inst, Customer: inst.Edges.Customer, SlotKey: sl.Key,
				NeedsDeploy: inst.NeedsDeploy || inst.DeployedAt == nil}
			for _, st := range states {
				if st.Slot.ID == sl.ID {
					iu.Credential = st.Credential
				}
			}
			u.Instances = append(u.Instances, iu)
		}
	}
	return u, nil
}
