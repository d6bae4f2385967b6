Feature: A component that loses every member at once recovers unattended
  As an operator I need a power cut of every member of a quorum component to end with the
  component whole again, by itself, with every acknowledged write still there.

  Background:
    Given the lab is up

  @cold-restart @slow
  Scenario Outline: Every <component> member is killed at once and the cluster recovers
    Given <component> has its full membership
    And a client writes to <component> continuously
    When every <component> member is killed at once
    Then every member of <component> is healthy and agrees on the membership within 300 seconds
    And the client's writes to <component> go on within 60 seconds
    And every acknowledged write to <component> is still there

    Examples:
      | component |
      | galera    |
      | etcd      |
      | rabbitmq  |
