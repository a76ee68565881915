package connection

import (
	"context"
	"strings"

	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/user"
)

// CreateUserInput is a new user of a customer.
type CreateUserInput struct {
	CustomerID int
	ExternalID string
	Email      string
}

// CreateUser creates a user of one of the organization's customers, for
// USER-scope connections; its external id is unique within the customer.
func (s *Service) CreateUser(ctx context.Context, in CreateUserInput) (*ent.User, error) {
	v, err := Authorize(ctx, ManageUsers)
	if err != nil {
		return nil, err
	}
	var errs []FieldError
	if ok, err := s.customerExists(ctx, in.CustomerID); err != nil {
		return nil, err
	} else if !ok {
		errs = append(errs, fieldErr(CodeNotFound, "No such customer.", "customerID"))
	}
	if strings.TrimSpace(in.ExternalID) == "" || len(in.ExternalID) > 200 {
		errs = append(errs, fieldErr(CodeInvalidValue, "An external id is 1 to 200 characters.", "externalID"))
	}
	errs = append(errs, checkChars(in.ExternalID, identifier, "externalID")...)
	errs = append(errs, checkChars(in.Email, identifier, "email")...)
	if in.Email != "" && (len(in.Email) > 320 || !strings.Contains(in.Email, "@")) {
		errs = append(errs, fieldErr(CodeInvalidValue, "An email address has an @ and at most 320 characters.", "email"))
	}
	if len(errs) > 0 {
		return nil, invalid(errs...)
	}
	var u *ent.User
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		taken, err := tx.User.Query().Where(user.CustomerID(in.CustomerID), user.ExternalID(in.ExternalID)).Exist(ctx)
		if err != nil {
			return err
		}
		if taken {
			return invalid(fieldErr(CodeTaken, "The customer has another user with this external id.", "externalID"))
		}
		c := tx.User.Create().SetOrganizationID(v.OrganizationID).SetCustomerID(in.CustomerID).SetExternalID(in.ExternalID)
		if in.Email != "" {
			c.SetEmail(in.Email)
		}
		u, err = c.Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return u.Unwrap(), nil
}
