@identity
Feature: Identity: every user gets a token, and losing a keystone pod costs no request
  As an operator I need keystone to issue tokens to the admin and to ordinary users from any
  member, with the roles and catalogue they are entitled to, and the loss of one keystone pod
  to go unnoticed by clients behind the front.

  Background:
    Given the lab is up

  Scenario: The admin and a member user get tokens with their own roles
    When the admin asks keystone for a token
    Then the token carries the role "admin" on project "admin"
    And the token's catalogue lists compute, identity, image, network and placement
    When the member user asks keystone for a token
    Then the token carries the role "member" on project "demo"
    And the token does not carry the role "admin"

  Scenario: The lab's secrets appear in no pod's log
    Then no secret of the lab is in the log of any pod

  @failover
  Scenario: A keystone pod is killed while tokens are requested continuously
    Given a client sends requests to keystone continuously
    When one keystone member is killed
    Then the client's requests to keystone go on within 30 seconds
    And keystone works on every member again within 180 seconds
    # The goal is 0. A token request is a POST: one in flight on the killed pod is not
    # replayed by the front (it may not be idempotent), so it may fail; GETs are replayed.
    And at most 1 requests to keystone failed
